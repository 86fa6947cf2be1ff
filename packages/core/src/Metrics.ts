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
