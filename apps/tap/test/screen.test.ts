/**
 * The status table pinned below the messages, checked the way a person sees it: stdout and stderr go to one fake
 * terminal, and a small emulator (cursor moves, clears, newlines) replays what was written into the final screen.
 */
import { Writable } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { WsServer } from "@streamemit/testkit"
import { Effect, Fiber, Option } from "effect"
import * as Screen from "../src/Screen.ts"
import * as Tap from "../src/Tap.ts"

/** The screen a terminal shows after `output`: the lines, scrollback included. */
const emulate = (output: string): Array<string> => {
  const lines: Array<string> = [""]
  let row = 0
  let col = 0
  const put = (text: string) => {
    const line = lines[row] ?? ""
    lines[row] = line.slice(0, col).padEnd(col) + text + line.slice(col + text.length)
    col += text.length
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what this parses
  const tokens = output.split(/(\x1b\[[0-9;]*[A-Za-z]|\n)/)
  for (const token of tokens) {
    if (token === "") continue
    if (token === "\n") {
      row++
      col = 0
      if (lines[row] === undefined) lines[row] = ""
      continue
    }
    // biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what this parses
    const sequence = /^\x1b\[([0-9;]*)([A-Za-z])$/.exec(token)
    if (sequence === null) {
      put(token)
      continue
    }
    const n = sequence[1] === "" ? 1 : Number(sequence[1])
    switch (sequence[2]) {
      case "F": // to the start of the line n up
        row = Math.max(0, row - n)
        col = 0
        break
      case "A":
        row = Math.max(0, row - n)
        break
      case "J": // clear to the end of the screen
        lines[row] = (lines[row] ?? "").slice(0, col)
        lines.length = row + 1
        break
      case "K":
        lines[row] = ""
        break
      // "m" (colours) and anything else: no effect on the text
    }
  }
  while (lines.length > 0 && lines.at(-1) === "") lines.pop()
  return lines
}

/** One terminal that stdout and stderr both write to. */
const terminal = () => {
  let written = ""
  const make = () =>
    Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          written += String(chunk)
          done()
        }
      }),
      { isTTY: true, columns: 160 }
    )
  return { stdout: make(), stderr: make(), written: () => written }
}

describe("the status table", () => {
  it("renders a header and a row per source, cut to the terminal's width", () => {
    const rows: Array<Screen.Row> = [
      {
        source: "ws://example.com/a-very-long-feed-name-for-this-test",
        state: "connected",
        total: 1234,
        dropped: 0,
        reconnects: 2
      }
    ]
    const lines = Screen.renderTable(rows, [56.25], 60)
    assert.strictEqual(lines.length, 2)
    assert.match(lines[0]!, /^SOURCE\s+STATE\s+TOTAL\s+RATE\/s\s+DROPPED\s+RECONNECTS/)
    assert.include(lines[1]!, "56.3")
    for (const line of lines) assert.isAtMost(line.length, 59)
  })

  it.live(
    "stays below the messages: every message line stays on the screen, the table is redrawn under them",
    () =>
      Effect.gen(function* () {
        const server = yield* WsServer.make()
        const term = terminal()
        const total = 60
        const run = yield* Tap.run(
          {
            sources: [server.url],
            framing: "lines",
            events: false,
            pretty: false,
            format: Option.some("message {data}"),
            count: Option.some(total),
            duration: Option.none(),
            stats: true,
            keepGoing: false,
            giveUpAfter: Option.none(),
            failFast: false,
            sendStdin: false,
            demo: false
          },
          term
        ).pipe(Effect.scoped, Effect.forkChild)
        const connection = yield* server.awaitConnections(1)
        yield* Effect.sleep("300 millis")
        // Messages over ~1.5 s: the table is drawn, erased and drawn again several times in between.
        for (let i = 1; i <= total; i++) {
          connection.socket.send(String(i))
          yield* Effect.sleep("25 millis")
        }
        yield* Fiber.join(run)
        const written = term.written()
        assert.isAbove(written.split("SOURCE").length - 1, 2, "the table was drawn several times")
        const screen = emulate(written)
        const messages = screen.filter((line) => line.startsWith("message "))
        assert.deepStrictEqual(
          messages,
          Array.from({ length: total }, (_, i) => `message ${i + 1}`),
          "no message line was overwritten"
        )
        assert.notInclude(screen.join("\n"), "SOURCE", "the table is erased before the summary")
        assert.match(screen.at(-1)!, /^tap: stats: ws:\/\/127\.0\.0\.1:\d+\/? +connected +total=60 /)
        assert.isTrue(
          screen.some((line) => /^tap: \[ws:\/\/127\.0\.0\.1:\d+\/?\] connecting attempt=1$/.test(line)),
          "the first attempt's lifecycle is on the screen"
        )
      }).pipe(Effect.scoped),
    30_000
  )
})
