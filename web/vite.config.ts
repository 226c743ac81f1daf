// The dashboard's build: `npm run build:web` (scripts/build-web.mjs) writes web/dist, which the
// API server serves at `/`. `npm run dev:web` serves it with hot reload, proxying the API to a
// running `iot-monitor start` on port 8080 (override with IOT_API=http://host:port).
import { defineConfig } from 'vite'

const root = decodeURIComponent(new URL('.', import.meta.url).pathname)
const api = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.IOT_API ?? 'http://127.0.0.1:8080'

export default defineConfig({
  root,
  base: '/',
  // React 19's automatic JSX runtime through Vite's own transform (Oxc): no React plugin needed.
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1200
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
      '/health': { target: api }
    }
  }
})
