export { createHttpServer, type HttpServerOptions, type Readiness } from './http.ts';
export { type RunningSidecar, type StartSidecarOptions, startSidecar } from './sidecar.ts';
