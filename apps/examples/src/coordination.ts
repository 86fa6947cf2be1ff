/**
 * Coordinating several streams (the guide's pattern 3): prices over a WebSocket and orders over SSE, merged into
 * one stream of decisions: each order is priced at the latest price seen (`Stream.zipLatest`-style state kept in
 * a `Stream.mapAccum`). The guide coordinated hand-written sources through queues and Refs; each source here is a
 * connector with its own reconnect and backpressure, merged with `Stream.merge`.
 */
import { Sse } from "@streamemit/sse"
import * as SseServer from "@streamemit/testkit/SseServer"
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Schema, Stream } from "effect"
import { runWhenMain } from "./main.ts"

const Price = Schema.Struct({ price: Schema.Number })
const Order = Schema.Struct({ order: Schema.Number, quantity: Schema.Number })

export const program = Effect.gen(function* () {
  const prices = yield* WsServer.make({
    onConnection: ({ socket }) => {
      let n = 0
      const timer = setInterval(() => socket.send(JSON.stringify({ price: 100 + ++n })), 5)
      socket.once("close", () => clearInterval(timer))
    }
  })
  const orders = yield* SseServer.make()
  const priced = WebSocket.stream({ url: prices.url, schema: Price }).pipe(
    Stream.map((p) => ({ _tag: "price" as const, ...p }))
  )
  const ordered = Sse.stream({ url: orders.url, schema: Order }).pipe(
    Stream.map((e) => ({ _tag: "order" as const, ...e.data }))
  )
  // Orders arrive once prices flow.
  yield* Effect.forkScoped(
    Effect.andThen(
      Effect.sleep("100 millis"),
      orders.publish(Array.from({ length: 5 }, (_, i) => ({ data: JSON.stringify({ order: i + 1, quantity: i + 1 }) })))
    )
  )
  const decisions = yield* Stream.merge(priced, ordered).pipe(
    Stream.mapAccum(
      () => undefined as number | undefined,
      (latest, item) =>
        item._tag === "price"
          ? [item.price, []]
          : [latest, latest === undefined ? [] : [{ order: item.order, total: item.quantity * latest }]]
    ),
    Stream.take(5),
    Stream.runCollect
  )
  return { decisions: decisions.map((d) => ({ order: d.order, priced: d.total > 0 })) }
})

runWhenMain(import.meta.url, program)
