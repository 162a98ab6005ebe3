import { defineClientSuite } from './client-suite.ts';

defineClientSuite('java', '5');
