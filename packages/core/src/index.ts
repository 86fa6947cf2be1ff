/**
 * @since 0.1.0
 */

/**
 * The one error type of every StreamEmit connector.
 *
 * @since 0.1.0
 */
export * as ConnectorError from "./ConnectorError.ts"

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
