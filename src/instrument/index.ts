export {
  errorCodeLabel,
  type InstrumentedDriver,
  type InstrumentOptions,
  instrumentDriver,
  POOL_STATE_GAUGES,
  poolStateGauges,
} from './driver.ts';
