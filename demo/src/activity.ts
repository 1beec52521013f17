/**
 * The demo's one typed topic: user-activity events, defined once with zod and
 * shared by the shop (producer, in the browser through the SharedWorker), the
 * dashboard (consumer) and the traffic generator (producer, in Node).
 *
 * Records are keyed by `userId`, so the SDK's murmur2 partitioner sends all
 * of one user's events to one partition and they stay in order (Kafka's
 * per-partition ordering). `ts` is when the event happened on the user's
 * device, which may be long before it reaches the broker when the user was
 * offline; the dashboard charts by `ts` so offline events fill in the past.
 */
// zod/mini: the same schemas, tree-shakeable (the classic `zod` entry adds ~450 KB to each page bundle).
import * as z from 'zod/mini';
import { defineTopic } from '@runnel/client';

export const ACTIVITY_TOPIC_NAME = 'activity';

/** Bounds on free-text fields: a misbehaving page must not ship megabytes per click. */
const MAX_PATH_CHARS = 512;
const MAX_LABEL_CHARS = 120;
const MAX_ID_CHARS = 64;

const text = (min: number, max: number) => z.string().check(z.minLength(min), z.maxLength(max));
const count = (min: number) => z.int().check(z.minimum(min));

const common = {
  userId: text(1, MAX_ID_CHARS),
  sessionId: text(1, MAX_ID_CHARS),
  /** Epoch milliseconds on the device when the event happened. */
  ts: count(0),
  /** Page path, e.g. `/shop/product-lamp.html`. */
  path: text(1, MAX_PATH_CHARS),
};

export const PageViewEvent = z.object({
  type: z.literal('page_view'),
  ...common,
  title: text(0, MAX_LABEL_CHARS),
  referrer: text(0, MAX_PATH_CHARS),
});

export const ClickEvent = z.object({
  type: z.literal('click'),
  ...common,
  /** What was clicked: the element's `data-track` name or its trimmed text. */
  target: text(0, MAX_LABEL_CHARS),
});

export const ScrollEvent = z.object({
  type: z.literal('scroll'),
  ...common,
  /** Deepest quarter of the page reached, sent once per threshold per page view. */
  depthPercent: z.union([z.literal(25), z.literal(50), z.literal(75), z.literal(100)]),
});

export const AddToCartEvent = z.object({
  type: z.literal('add_to_cart'),
  ...common,
  productId: text(1, MAX_ID_CHARS),
  priceCents: count(0),
  quantity: count(1),
});

export const CheckoutEvent = z.object({
  type: z.literal('checkout'),
  ...common,
  items: count(0),
  totalCents: count(0),
});

export const ActivityEvent = z.discriminatedUnion('type', [
  PageViewEvent,
  ClickEvent,
  ScrollEvent,
  AddToCartEvent,
  CheckoutEvent,
]);
export type ActivityEvent = z.infer<typeof ActivityEvent>;
export type ActivityType = ActivityEvent['type'];
export const ACTIVITY_TYPES: readonly ActivityType[] = ['page_view', 'click', 'scroll', 'add_to_cart', 'checkout'];

/** The typed topic: `producer.send(activityTopic, event, { key: event.userId })`. */
export const activityTopic = defineTopic(ACTIVITY_TOPIC_NAME, ActivityEvent);
