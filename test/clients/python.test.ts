import { defineClientSuite } from './client-suite.ts';

defineClientSuite('python', '5');
