/**
 * @since 0.1.0
 */

/**
 * Checkpoints: a source's cursor kept across restarts, saved after the work on it is done.
 *
 * @since 0.2.0
 */
export * as Checkpoint from "./Checkpoint.ts"

/**
 * The connector machinery: driver contract, reconnect, liveness, lifecycle, resync, metrics, decoding.
 *
 * @since 0.1.0
 */
export * as Connector from "./Connector.ts"

/**
 * The one error type of every StreamEmit connector.
 *
 * @since 0.1.0
 */
export * as ConnectorError from "./ConnectorError.ts"
/**
 * Payload decoding with a `Schema` under a fail/skip policy.
 *
 * @since 0.2.0
 */
export * as Decode from "./Decode.ts"
/**
 * Deliveries of a durable source, acknowledged after the work is done.
 *
 * @since 0.2.0
 */
export * as Delivery from "./Delivery.ts"
/**
 * The driver contract: what a connector supplies.
 *
 * @since 0.2.0
 */
export * as Driver from "./Driver.ts"
/**
 * HTTP plumbing shared by connectors: URL and header options, status classification, `Retry-After`, `fetch` errors.
 *
 * @since 0.2.0
 */
export * as Http from "./Http.ts"
/**
 * Lifecycle events, in-band and out.
 *
 * @since 0.1.0
 */
export * as Lifecycle from "./Lifecycle.ts"
/**
 * Metrics reported by StreamEmit streams.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.ts"
/**
 * Overflow policies: bounded memory, no silent loss.
 *
 * @since 0.1.0
 */
export * as Overflow from "./Overflow.ts"
/**
 * The Effect 3 StreamEmit API on Effect 4.
 *
 * @since 0.1.0
 */
export * as StreamEmit from "./StreamEmit.ts"
