import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// The first screen's code and config, asked for by index.html itself: the browser fetches them while it
// fetches the small entry, instead of after the entry has run. config.json comes first because every
// request for data waits for it; then React and the shell (start.tsx) and the default page, the overview
// (its charts are its own SVG, not Recharts). A page other than the overview fetches the overview's small
// chunk for nothing (cached immutable); its Recharts chunk is fetched when the page asks for it.
const FIRST_SCREEN = ["src/start.tsx", "src/pages/Overview.tsx"];

function firstScreenPreloads(): Plugin {
  let base = "/";
  return {
    name: "tokentra-first-screen-preloads",
    apply: "build",
    configResolved(config) {
      base = config.base;
    },
    transformIndexHtml: {
      order: "post",
      handler(html, ctx) {
        const chunks = Object.values(ctx.bundle ?? {}).filter((c) => c.type === "chunk");
        const files: string[] = [];
        const add = (fileName: string) => {
          const chunk = chunks.find((c) => c.fileName === fileName);
          if (!chunk || chunk.isEntry || files.includes(fileName)) return;
          chunk.imports.forEach(add); // dependencies first: they are needed first
          files.push(fileName);
        };
        for (const module of FIRST_SCREEN) {
          const chunk = chunks.find((c) => c.facadeModuleId?.endsWith(module));
          if (!chunk) throw new Error(`first-screen preloads: no chunk for ${module}`);
          add(chunk.fileName);
        }
        const links = [
          `<link rel="preload" href="${base}config.json" as="fetch" crossorigin="anonymous">`,
          ...files.map((f) => `<link rel="modulepreload" crossorigin href="${base}${f}">`),
        ];
        // After the entry and the stylesheet: six connections per host, and the entry is needed first.
        return html.replace("</head>", `  ${links.join("\n    ")}\n  </head>`);
      },
    },
  };
}

// Served by `tokentra serve` under /dashboard/; a static host serves the same files under any path
// ending in /dashboard/ (or set base with `vite build --base=/other/`).
export default defineConfig({
  base: "/dashboard/",
  plugins: [react(), firstScreenPreloads()],
  build: {
    outDir: "dist",
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    // `npm run dev` talks to a running `tokentra serve`.
    proxy: { "/functions": "http://127.0.0.1:54321" },
  },
});
