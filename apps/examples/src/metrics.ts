/**
 * Real-time metrics collection (the guide's example 2): a WebSocket feed of prices, aggregated per window
 * (count, mean, max) with `Stream.groupedWithin`, and a gauge of the last price as an Effect `Metric`. The guide
 * polled a metrics endpoint into an `asyncPush`; a push feed needs no polling.
 */
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Metric, Schema, Stream } from "effect"
import { runWhenMain } from "./main.ts"

const Tick = Schema.Struct({ symbol: Schema.String, price: Schema.Number })
export const lastPrice = Metric.gauge("example_last_price")

export const program = Effect.gen(function* () {
  // The embedded source: 60 ticks, 5 ms apart, to whoever connects.
  const server = yield* WsServer.make({
    onConnection: ({ socket }) => {
      let n = 0
      const timer = setInterval(() => {
        n++
        socket.send(JSON.stringify({ symbol: "DEMO", price: 100 + Math.sin(n / 5) * 3 }))
        if (n === 60) clearInterval(timer)
      }, 5)
      socket.once("close", () => clearInterval(timer))
    }
  })
  const windows = yield* WebSocket.stream({ url: server.url, schema: Tick }).pipe(
    Stream.take(60),
    Stream.tap((tick) => Metric.update(lastPrice, tick.price)),
    Stream.groupedWithin(20, "1 second"),
    Stream.map((ticks) => ({
      count: ticks.length,
      mean: ticks.reduce((sum, t) => sum + t.price, 0) / ticks.length,
      max: Math.max(...ticks.map((t) => t.price))
    })),
    Stream.runCollect
  )
  return { windows, lastPrice: (yield* Metric.value(lastPrice)).value }
})

runWhenMain(import.meta.url, program)
