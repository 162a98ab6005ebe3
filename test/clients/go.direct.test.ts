import { defineClientSuite } from './direct-suite.ts';

defineClientSuite('go', {
  driverLine: '5',
  boltVersion: '5.8',
  syntaxErrorGqlStatus: '50N42',
  refusedClassName: /^ConnectivityError$/,
});
