// Builds web/dist: our own assets from src/ plus hls.js from node_modules (never committed).
import { cpSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
cpSync("src", "dist", { recursive: true });
cpSync("node_modules/hls.js/dist/hls.min.js", "dist/hls.min.js");
console.log("web/dist built");
