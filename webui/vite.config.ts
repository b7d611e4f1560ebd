import { defineConfig } from "vitest/config";
import vue from "@vitejs/plugin-vue";

// The server serves dist/ at "/"; hashed files go to dist/assets/ (cached forever by the server).
export default defineConfig({
  plugins: [vue()],
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": "http://127.0.0.1:9601", "/health": "http://127.0.0.1:9601" },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
