import { defineConfig } from 'vite';

// Built by `make setup` into the Python package; served by clearsight under /ui/ (see src/clearsight/api/ui.py).
export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../src/clearsight/web_dist',
    emptyOutDir: true,
    target: 'es2020',
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:9800',
      '/loki': 'http://127.0.0.1:9800',
      '/ws': { target: 'ws://127.0.0.1:9800', ws: true },
    },
  },
});
