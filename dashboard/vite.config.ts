import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by `tokentra serve` under /dashboard/; a static host serves the same files under any path
// ending in /dashboard/ (or set base with `vite build --base=/other/`).
export default defineConfig({
  base: "/dashboard/",
  plugins: [react()],
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
