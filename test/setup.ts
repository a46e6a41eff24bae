import { checkedFetch } from './helpers/openapi-check.js';

// Every answer from a server the helpers started is checked against its OpenAPI document.
globalThis.fetch = checkedFetch;
