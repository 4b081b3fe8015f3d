// Node 20 has no WebSocket of its own (Node 22 does, and the suites expect one): the `ws`
// package's stands in for it.
globalThis.WebSocket ??= require('ws')
