/**
 * A Node HTTP server listening on a free loopback port for as long as the Scope: its port, and on release every
 * connection closed (long-lived streams included) before the server is.
 *
 * @internal
 */
import type * as Http from "node:http"
import type * as Net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export const listen = (server: Http.Server): Effect.Effect<number, Error, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.callback<void, Error>((resume) => {
        server.once("error", (cause) => resume(Effect.fail(cause)))
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    ),
    () => (server.address() as Net.AddressInfo).port
  )
