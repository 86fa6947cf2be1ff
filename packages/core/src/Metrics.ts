/**
 * The metrics every StreamEmit stream reports through Effect `Metric`, labelled by `connector` and `name`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Values lost to a lossy buffer strategy (`"dropping"`, `"sliding"`), across every stream.
 *
 * @since 0.1.0
 * @category metrics
 */
export const droppedTotal: Metric.Counter<number> = Metric.counter("streamemit_dropped_total", {
  description: "Values dropped by a buffer strategy",
  incremental: true
})

/**
 * The dropped counter of one stream.
 *
 * @since 0.1.0
 * @category metrics
 */
export const dropped = (connector: string, name: string): Metric.Counter<number> =>
  Metric.withAttributes(droppedTotal, { connector, name })

const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

/**
 * @since 0.1.0
 * @category metrics
 */
export const messagesTotal: Metric.Counter<number> = counter("streamemit_messages_total", "Messages received")

/**
 * @since 0.1.0
 * @category metrics
 */
export const bytesTotal: Metric.Counter<number> = counter("streamemit_bytes_total", "Payload bytes received")

/**
 * @since 0.1.0
 * @category metrics
 */
export const reconnectsTotal: Metric.Counter<number> = counter("streamemit_reconnects_total", "Reconnects scheduled")

/**
 * Errors by `reason` (`Connect`, `Timeout`, …), whether retried or not.
 *
 * @since 0.1.0
 * @category metrics
 */
export const errorsTotal: Metric.Counter<number> = counter("streamemit_errors_total", "Connection errors")

/**
 * @since 0.1.0
 * @category metrics
 */
export const decodeSkippedTotal: Metric.Counter<number> = counter(
  "streamemit_decode_skipped_total",
  "Payloads skipped by the decode policy"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const downtimeMillisTotal: Metric.Counter<number> = counter(
  "streamemit_downtime_milliseconds_total",
  "Time spent reconnecting after a connection was lost"
)

/**
 * @since 0.2.0
 * @category metrics
 */
export const lostTotal: Metric.Counter<number> = counter(
  "streamemit_lost_total",
  "Messages the source lost before they were read (e.g. a Redis stream trimmed past unread entries)"
)

/**
 * Values waiting in the buffer when the consumer last took.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bufferDepth: Metric.Gauge<number> = Metric.gauge("streamemit_buffer_depth", {
  description: "Values buffered when the consumer last took"
})

/**
 * 1 while connected, 0 otherwise.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connected: Metric.Gauge<number> = Metric.gauge("streamemit_connected", {
  description: "1 while the connector is connected"
})

/**
 * The metrics of one connector instance, labelled by `connector` and `name`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectorMetrics {
  readonly messages: Metric.Counter<number>
  readonly bytes: Metric.Counter<number>
  readonly dropped: Metric.Counter<number>
  readonly reconnects: Metric.Counter<number>
  readonly errors: (reason: string) => Metric.Counter<number>
  readonly decodeSkipped: Metric.Counter<number>
  readonly lost: Metric.Counter<number>
  readonly downtimeMillis: Metric.Counter<number>
  readonly bufferDepth: Metric.Gauge<number>
  readonly connected: Metric.Gauge<number>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const forConnector = (connector: string, name: string): ConnectorMetrics => {
  // Descriptors only (values live in the registry): every handle of a connector and name shares one set, so a
  // service holding thousands of sources does not build a set per source.
  const key = `${connector}\u0000${name}`
  const known = byConnector.get(key)
  if (known !== undefined) return known
  const attributes = { connector, name }
  const errors = new Map<string, Metric.Counter<number>>()
  const metrics: ConnectorMetrics = {
    messages: Metric.withAttributes(messagesTotal, attributes),
    bytes: Metric.withAttributes(bytesTotal, attributes),
    dropped: Metric.withAttributes(droppedTotal, attributes),
    reconnects: Metric.withAttributes(reconnectsTotal, attributes),
    errors: (reason) => {
      let counter = errors.get(reason)
      if (counter === undefined) {
        counter = Metric.withAttributes(errorsTotal, { ...attributes, reason })
        errors.set(reason, counter)
      }
      return counter
    },
    decodeSkipped: Metric.withAttributes(decodeSkippedTotal, attributes),
    lost: Metric.withAttributes(lostTotal, attributes),
    downtimeMillis: Metric.withAttributes(downtimeMillisTotal, attributes),
    bufferDepth: Metric.withAttributes(bufferDepth, attributes),
    connected: Metric.withAttributes(connected, attributes)
  }
  byConnector.set(key, metrics)
  return metrics
}

const byConnector = new Map<string, ConnectorMetrics>()
