/** `columnformer/viz`: figures from plain arrays (SVG strings; writeFigure adds the PNG). */
export { histogram, lineChart, scatter } from "./charts.ts";
export { attentionOnSheet, sheetMap, sheetMaps } from "./sheet-maps.ts";
export { columnLayout, type ColumnLayoutOptions, type LayoutEdge } from "./column-layout.ts";
export { reconstructionFigure, writeReconstructionPng } from "./reconstructions.ts";
export { svgToPng, writeFigure } from "./render.ts";
