import { defineClientSuite } from './direct-suite.ts';

defineClientSuite('python', {
  driverLine: '5',
  boltVersion: '5.8',
  syntaxErrorGqlStatus: '50N42',
  refusedClassName: /^ServiceUnavailable$/,
});
// The last line before Bolt 5: the login rides in HELLO and there are no GQL statuses.
defineClientSuite('python', {
  driverLine: '4.4',
  boltVersion: '4.4',
  syntaxErrorGqlStatus: null,
  refusedClassName: /^ServiceUnavailable$/,
});
