import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The Rust server (`baton serve`, default 127.0.0.1:8080). Override with BATON_API.
const api = process.env['BATON_API'] ?? 'http://127.0.0.1:8080';
const devHost = '127.0.0.1';
const devPort = Number(process.env['BATON_DEV_PORT'] ?? 5173);
const devOrigin = `http://${devHost}:${devPort}`;

// The server answers cookie-authenticated requests (refresh, logout) from a foreign Origin with
// 403 origin_not_allowed. Through this proxy the browser's Origin is the dev server's, so we
// rewrite it to the backend's own origin -- but only when it really is the dev server, so a
// request from any other site is still refused by the server.
const proxyTo = {
  target: api,
  changeOrigin: true,
  configure(proxy: { on(event: 'proxyReq', cb: (req: { getHeader(n: string): unknown; setHeader(n: string, v: string): void }) => void): void }) {
    proxy.on('proxyReq', (proxyReq) => {
      if (proxyReq.getHeader('origin') === devOrigin) {
        proxyReq.setHeader('origin', new URL(api).origin);
      }
    });
  },
};

export default defineConfig({
  plugins: [react()],
  server: {
    host: devHost,
    port: devPort,
    strictPort: true,
    proxy: {
      '/auth': proxyTo,
      '/.well-known': proxyTo,
      '/openapi.json': proxyTo,
      '/docs': proxyTo,
      '/healthz': proxyTo,
      '/readyz': proxyTo,
    },
  },
  build: {
    target: 'es2022',
    sourcemap: true,
  },
});
