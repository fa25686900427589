'use strict';
// OpenTelemetry set-up, loaded before the app: `node --require ./otel.js app.js`.
//
// Configured the way users usually do it: the SDK reads the standard OTEL_* variables
// (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_SCHEDULE_DELAY, ...). The traces
// exporter defaults to OTLP over HTTP with protobuf bodies, to <endpoint>/v1/traces.

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');

const sdk = new NodeSDK({
  // http gives the SERVER span, express names it after the route (http.route), pg adds one
  // CLIENT span per query plus pg-pool.connect / pg.connect spans for connections.
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation(), new PgInstrumentation()],
});
sdk.start();

// On SIGTERM or SIGINT, export the spans still queued before exiting; without this the last
// batch is lost.
let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  sdk
    .shutdown()
    .then(
      () => console.log(`otel: ${signal}: spans flushed, exiting`),
      (err) => console.error(`otel: ${signal}: shutdown failed: ${err}`),
    )
    .finally(() => process.exit(0));
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
