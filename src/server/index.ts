export { createHttpServer, type HttpServerOptions, type Readiness } from './http.ts';
export {
  type Component,
  type ComponentFactory,
  createSidecarDriver,
  type RunningSidecar,
  type SidecarContext,
  type StartSidecarOptions,
  startSidecar,
} from './sidecar.ts';
export { SIDECAR_VERSION } from './version.ts';
