// The part of launchdarkly-eventsource (no types of its own) that the sse suite's peer row uses.
declare module "launchdarkly-eventsource" {
  class EventSource {
    constructor(url: string, options?: Record<string, unknown>)
    addEventListener(
      type: string,
      listener: (event: { readonly data?: string; readonly message?: string }) => void
    ): void
    close(): void
  }
  const module: { readonly EventSource: typeof EventSource }
  export default module
}
