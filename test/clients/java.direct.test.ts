import { defineClientSuite } from './direct-suite.ts';

defineClientSuite('java', {
  driverLine: '5',
  boltVersion: '5.8',
  syntaxErrorGqlStatus: '50N42',
  refusedClassName: /^ServiceUnavailableException$/,
});
