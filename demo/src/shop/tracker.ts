/**
 * Instrumentation of a shop page: turns page loads, clicks, scroll depth and
 * cart actions into typed `ActivityEvent`s and hands them to `send` (the
 * SDK's producer, keyed by userId).
 *
 * NB: a click on a link unloads the page. The event is handed to the SDK
 * (the SharedWorker's outbox) before the navigation continues: same-origin
 * link clicks wait for `send` to be accepted, at most `navigationDelayMs`.
 */
import type { ActivityEvent } from '../activity.ts';
import type { Identity } from './identity.ts';

/** Longest a link click waits for its event to reach the outbox; users notice beyond ~300 ms. */
const NAVIGATION_DELAY_MS = 300;
/** Longest label kept for a clicked element. */
const MAX_LABEL_CHARS = 80;

type Payload<T extends ActivityEvent['type']> = Omit<Extract<ActivityEvent, { type: T }>, 'type' | 'userId' | 'sessionId' | 'ts' | 'path'>;

export interface TrackerOptions {
  identity: Identity;
  /** Resolves once the event is accepted by the SDK (queued in the outbox). */
  send: (event: ActivityEvent) => Promise<unknown>;
  /** Page path recorded on every event. */
  path: string;
  /** Called once per event handed to `send` (the badge counts them). */
  onTracked?: (event: ActivityEvent) => void;
  onError?: (error: unknown) => void;
}

export class Tracker {
  private readonly scrollDepthsSent = new Set<number>();

  constructor(private readonly options: TrackerOptions) {}

  track<T extends ActivityEvent['type']>(type: T, payload: Payload<T>): Promise<void> {
    const { identity, path } = this.options;
    const event = { type, userId: identity.userId, sessionId: identity.sessionId, ts: Date.now(), path, ...payload } as unknown as ActivityEvent;
    this.options.onTracked?.(event);
    return this.options.send(event).then(
      () => undefined,
      (error: unknown) => this.options.onError?.(error),
    );
  }

  pageView(): Promise<void> {
    return this.track('page_view', { title: document.title.slice(0, 120), referrer: sameOriginPath(document.referrer) });
  }

  /** Reports each scroll quarter (25/50/75/100 %) once per page view. */
  maybeTrackScroll(): void {
    const scrollable = document.documentElement.scrollHeight;
    if (scrollable <= 0) return;
    const seen = Math.min(100, ((window.scrollY + window.innerHeight) / scrollable) * 100);
    for (const depthPercent of [25, 50, 75, 100] as const) {
      if (seen + 0.5 < depthPercent || this.scrollDepthsSent.has(depthPercent)) continue;
      this.scrollDepthsSent.add(depthPercent);
      void this.track('scroll', { depthPercent });
    }
  }

  /** Listens to clicks and scrolling; returns the remover. */
  instrument(): () => void {
    const controller = new AbortController();
    const { signal } = controller;
    document.addEventListener('click', (event) => this.handleClick(event), { capture: true, signal });
    let scheduled = false;
    window.addEventListener('scroll', () => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        this.maybeTrackScroll();
      });
    }, { passive: true, signal });
    return () => controller.abort();
  }

  private handleClick(event: MouseEvent): void {
    const element = (event.target as Element | null)?.closest('[data-track], a, button');
    if (!element) return;
    const sent = this.track('click', { target: clickLabel(element) });
    const link = element.closest('a');
    if (!link || !isPlainSameOriginNavigation(event, link)) return;
    // Let the event reach the outbox before the page unloads (bounded wait).
    event.preventDefault();
    const timeout = new Promise((resolve) => setTimeout(resolve, NAVIGATION_DELAY_MS));
    void Promise.race([sent, timeout]).then(() => location.assign(link.href));
  }
}

function clickLabel(element: Element): string {
  const named = element.getAttribute('data-track');
  const label = named ?? (element.textContent ?? '').replace(/\s+/g, ' ').trim();
  return (label || element.tagName.toLowerCase()).slice(0, MAX_LABEL_CHARS);
}

function isPlainSameOriginNavigation(event: MouseEvent, link: HTMLAnchorElement): boolean {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (link.target && link.target !== '_self') return false;
  return link.origin === location.origin && link.href !== location.href;
}

function sameOriginPath(url: string): string {
  if (!url) return '';
  try {
    const parsed = new URL(url);
    return (parsed.origin === location.origin ? parsed.pathname : parsed.origin).slice(0, 512);
  } catch {
    return '';
  }
}
