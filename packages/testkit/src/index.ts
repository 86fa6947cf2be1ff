/**
 * @since 0.1.0
 */

/**
 * The suite every `Checkpoint.Store` runs against its real backend.
 *
 * @since 0.2.0
 */
export * as CheckpointStore from "./CheckpointStore.ts"
/**
 * Child processes and result files for the tests that kill a consumer with -9.
 *
 * @since 0.2.0
 */
export * as Child from "./Child.ts"
/**
 * The connector conformance suite.
 *
 * @since 0.1.0
 */
export * as Conformance from "./Conformance.ts"
/**
 * Assertions about connector outcomes.
 *
 * @since 0.1.0
 */
export * as Expect from "./Expect.ts"
/**
 * A fault-injecting TCP proxy.
 *
 * @since 0.1.0
 */
export * as FaultProxy from "./FaultProxy.ts"
/**
 * A scripted streaming HTTP server.
 *
 * @since 0.1.0
 */
export * as HttpServer from "./HttpServer.ts"
/**
 * A scripted MCP endpoint over Streamable HTTP: sessions, a resumable tools/call stream.
 *
 * @since 0.2.0
 */
export * as McpServer from "./McpServer.ts"
/**
 * A scripted model-streaming endpoint: POST, events with ids, drops mid-answer, resume after `Last-Event-ID`.
 *
 * @since 0.2.0
 */
export * as ModelServer from "./ModelServer.ts"
/**
 * Open resources of the process, to prove that nothing leaked.
 *
 * @since 0.1.0
 */
export * as Resources from "./Resources.ts"
/**
 * A scripted Server-Sent Events server that replays after `Last-Event-ID`.
 *
 * @since 0.1.0
 */
export * as SseServer from "./SseServer.ts"
/**
 * Polling waits for tests against real peers.
 *
 * @since 0.1.0
 */
export * as Wait from "./Wait.ts"
/**
 * A scripted WebSocket server.
 *
 * @since 0.1.0
 */
export * as WsServer from "./WsServer.ts"
