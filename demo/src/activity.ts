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
import { z } from 'zod';
import { defineTopic } from '@runnel/client';

export const ACTIVITY_TOPIC_NAME = 'activity';

/** Bounds on free-text fields: a misbehaving page must not ship megabytes per click. */
const MAX_PATH_CHARS = 512;
const MAX_LABEL_CHARS = 120;
const MAX_ID_CHARS = 64;

const common = {
  userId: z.string().min(1).max(MAX_ID_CHARS),
  sessionId: z.string().min(1).max(MAX_ID_CHARS),
  /** Epoch milliseconds on the device when the event happened. */
  ts: z.number().int().nonnegative(),
  /** Page path, e.g. `/shop/product-lamp.html`. */
  path: z.string().min(1).max(MAX_PATH_CHARS),
};

export const PageViewEvent = z.object({
  type: z.literal('page_view'),
  ...common,
  title: z.string().max(MAX_LABEL_CHARS),
  referrer: z.string().max(MAX_PATH_CHARS),
});

export const ClickEvent = z.object({
  type: z.literal('click'),
  ...common,
  /** What was clicked: the element's `data-track` name or its trimmed text. */
  target: z.string().max(MAX_LABEL_CHARS),
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
  productId: z.string().min(1).max(MAX_ID_CHARS),
  priceCents: z.number().int().nonnegative(),
  quantity: z.number().int().positive(),
});

export const CheckoutEvent = z.object({
  type: z.literal('checkout'),
  ...common,
  items: z.number().int().nonnegative(),
  totalCents: z.number().int().nonnegative(),
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
