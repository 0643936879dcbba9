// Chart heights, shared with the overview's placeholders so a chart arriving later moves nothing.
export const CHART_HEIGHT = 260;

/** Horizontal bars: one 34 px row per name, room for the axis, never under 120 px. */
export const barsHeight = (rows: number) => Math.max(120, 34 * rows + 40);
