export { errorCodeLabel, type InstrumentedDriver, type InstrumentOptions, instrumentDriver } from './driver.ts';
