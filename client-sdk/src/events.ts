/**
 * Typed EventTarget: the SDK's observable objects (client, connection,
 * subscription) are real `EventTarget`s, so `addEventListener` works as on
 * the web platform, plus a typed `on(type, fn)` that hands listeners the
 * event's `detail` and returns its own remover (release it in `close()`).
 */

/** A typed event target; `M` maps event names to their `detail` payloads. */
export class Emitter<M> extends EventTarget {
  /**
   * Listen to `type`; returns a function that removes the listener.
   * @example const off = client.on('statechange', ({ state }) => console.log(state)); off();
   */
  on<K extends keyof M & string>(type: K, listener: (detail: M[K]) => void, signal?: AbortSignal): () => void {
    const wrapped = (event: Event): void => listener((event as CustomEvent<M[K]>).detail);
    this.addEventListener(type, wrapped, { signal });
    return () => this.removeEventListener(type, wrapped);
  }

  /** Dispatches `detail` to the listeners of `type`. */
  protected emit<K extends keyof M & string>(type: K, detail: M[K]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
