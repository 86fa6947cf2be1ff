/**
 * Event-driven data processing (the guide's example 1): an SSE feed of orders, decoded with a Schema, a bad event
 * skipped and counted instead of failing the stream, totals per status. The guide's `Stream.asyncPush` around a
 * browser `EventSource`, its reconnect loop and its logger service are what `Sse.stream` already is.
 */
import { Metrics } from "@streamemit/core"
import { Sse } from "@streamemit/sse"
import * as SseServer from "@streamemit/testkit/SseServer"
import { Effect, Metric, Schema, Stream } from "effect"
import { runWhenMain } from "./main.ts"

const Order = Schema.Struct({ id: Schema.Number, status: Schema.Literals(["paid", "refunded"]), amount: Schema.Number })

export const program = Effect.gen(function* () {
  // The embedded source: 20 orders and one event that is not an order.
  const server = yield* SseServer.make()
  const orders = Array.from({ length: 20 }, (_, i) => ({
    data: JSON.stringify({ id: i + 1, status: i % 5 === 0 ? "refunded" : "paid", amount: 10 + i })
  }))
  yield* server.publish([...orders.slice(0, 10), { data: "not json" }, ...orders.slice(10)])

  const totals = yield* Sse.stream({ url: server.url, schema: Order, onDecodeError: "skip", name: "orders" }).pipe(
    Stream.take(20),
    Stream.runFold(
      () => ({ paid: 0, refunded: 0, amount: 0 }),
      (acc, event) => ({
        ...acc,
        [event.data.status]: acc[event.data.status] + 1,
        amount: acc.amount + (event.data.status === "paid" ? event.data.amount : -event.data.amount)
      })
    )
  )
  const skipped = (yield* Metric.value(Metrics.forConnector("sse", "orders").decodeSkipped)).count
  return { ...totals, skipped }
})

runWhenMain(import.meta.url, program)
