/// <reference types="vitest/config" />
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

/** Smallest file worth a compressed copy (the server's `MIN_COMPRESS_BYTES`). */
const MIN_COMPRESS_BYTES = 1024;
const TEXT = /\.(js|mjs|css|html|svg|json|txt|wasm)$/u;

/**
 * Writes `<file>.br` (brotli at its highest quality) and `<file>.gz` (gzip level 9) beside every
 * text file of the build's `assets/` folder. The server answers `/assets/*` with these copies
 * when the browser accepts them, so the best compression costs its CPU once, here, instead of a
 * cheaper one on every cold load (see docs/performance.md, "Web delivery").
 */
function precompress(): Plugin {
  let assetsDir = "";
  return {
    name: "letschat-precompress",
    apply: "build",
    configResolved(config) {
      assetsDir = resolve(config.root, config.build.outDir, config.build.assetsDir);
    },
    closeBundle() {
      for (const name of readdirSync(assetsDir)) {
        if (!TEXT.test(name)) continue;
        const path = join(assetsDir, name);
        const bytes = readFileSync(path);
        if (bytes.length < MIN_COMPRESS_BYTES) continue;
        writeFileSync(
          `${path}.br`,
          brotliCompressSync(bytes, {
            params: {
              [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
              [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
            },
          }),
        );
        writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }));
      }
    },
  };
}

// `npm run dev` proxies the API (REST and the WebSocket) to a running letschat server.
const api = process.env.LETSCHAT_DEV_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), precompress()],
  server: {
    proxy: {
      "/api": {
        target: api,
        changeOrigin: true,
        ws: true,
        // The server accepts WebSocket upgrades from its own origin only; through this proxy the
        // browser's Origin is the dev server's, so present the target's instead.
        configure: (proxy) => {
          proxy.on("proxyReqWs", (proxyReq) => proxyReq.setHeader("Origin", new URL(api).origin));
        },
      },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Maps are written but not named in the files: the server answers them with 404 unless
    // LETSCHAT_SERVE_SOURCEMAPS is set, and then names each in a `SourceMap` header.
    sourcemap: "hidden",
    assetsDir: "assets",
    rolldownOptions: {
      // `assets/<name>-<hash>.<ext>`: the server caches exactly these for good (`is_hashed_asset`).
      output: {
        entryFileNames: "assets/[name]-[hash].js",
        chunkFileNames: "assets/[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
  },
  test: {
    include: ["src/**/*.test.{ts,tsx}"],
    environment: "node",
    restoreMocks: true,
  },
});
