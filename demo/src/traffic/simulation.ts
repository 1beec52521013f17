/**
 * Simulated shoppers, as a sans-IO core: `next(nowMs)` returns the next
 * activity event of one of N users browsing the demo shop (home → product
 * list → product → add to cart → cart → checkout), with clicks and scroll
 * depth along the way. Randomness comes from a seed, time from the caller.
 *
 * Invariant: every event it returns passes the `ActivityEvent` schema (the
 * test checks thousands), so the generator exercises the same typed topic as
 * the real shop.
 */
import type { ActivityEvent } from '../activity.ts';
import { products, productForPath, shopPaths, type Product } from '../shop/catalog.ts';
import { pick, seededRandom, type Random } from './random.ts';

export interface SimulationOptions {
  users: number;
  seed: number;
  /** userId prefix, so simulated users are recognisable (and distinct per generator run). */
  userPrefix: string;
}

interface SimulatedUser {
  userId: string;
  sessionId: string;
  path: string | undefined;
  /** Deepest scroll quarter reported on the current page (0 = none). */
  scrollDepth: 0 | 25 | 50 | 75 | 100;
  cartItems: number;
  cartCents: number;
}

const CLICK_TARGETS = ['nav:home', 'nav:products', 'nav:cart', 'logo', 'search', 'newsletter', 'footer-link'];

export class TrafficSimulation {
  private readonly random: Random;
  private readonly users: SimulatedUser[];

  constructor(options: SimulationOptions) {
    if (!Number.isInteger(options.users) || options.users < 1) throw new RangeError(`users must be a positive integer, got ${options.users}`);
    this.random = seededRandom(options.seed);
    this.users = Array.from({ length: options.users }, (_, i) => ({
      userId: `${options.userPrefix}-${i + 1}`,
      sessionId: `${options.userPrefix}-s${i + 1}`,
      path: undefined,
      scrollDepth: 0,
      cartItems: 0,
      cartCents: 0,
    }));
  }

  get userCount(): number {
    return this.users.length;
  }

  /** The next event of a randomly chosen user, stamped `nowMs`. */
  next(nowMs: number): ActivityEvent {
    const user = pick(this.random, this.users);
    if (user.path === undefined) return this.navigate(user, shopPaths.home, '', nowMs);
    const product = productForPath(user.path);
    const roll = this.random();
    if (roll < 0.3) return this.navigate(user, this.nextPage(user.path), user.path, nowMs);
    if (roll < 0.55 && user.scrollDepth < 100) return this.scroll(user, nowMs);
    if (roll < 0.75 && product) return this.addToCart(user, product, nowMs);
    if (roll < 0.85 && user.path === shopPaths.cart && user.cartItems > 0) return this.checkout(user, nowMs);
    return { type: 'click', userId: user.userId, sessionId: user.sessionId, ts: nowMs, path: user.path, target: this.clickTarget(product) };
  }

  private nextPage(from: string): string {
    const roll = this.random();
    if (from === shopPaths.home) return roll < 0.6 ? shopPaths.products : shopPaths.product(pick(this.random, products).id);
    if (from === shopPaths.products) return roll < 0.85 ? shopPaths.product(pick(this.random, products).id) : shopPaths.home;
    if (from === shopPaths.cart) return roll < 0.5 ? shopPaths.products : shopPaths.home;
    // On a product page.
    if (roll < 0.35) return shopPaths.cart;
    if (roll < 0.8) return shopPaths.product(pick(this.random, products).id);
    return shopPaths.products;
  }

  private navigate(user: SimulatedUser, path: string, referrer: string, nowMs: number): ActivityEvent {
    user.path = path;
    user.scrollDepth = 0;
    const product = productForPath(path);
    const title = product ? product.name : path === shopPaths.cart ? 'Cart' : path === shopPaths.products ? 'Products' : 'Home';
    return { type: 'page_view', userId: user.userId, sessionId: user.sessionId, ts: nowMs, path, title, referrer };
  }

  private scroll(user: SimulatedUser, nowMs: number): ActivityEvent {
    const depthPercent = (user.scrollDepth + 25) as 25 | 50 | 75 | 100;
    user.scrollDepth = depthPercent;
    return { type: 'scroll', userId: user.userId, sessionId: user.sessionId, ts: nowMs, path: user.path ?? shopPaths.home, depthPercent };
  }

  private addToCart(user: SimulatedUser, product: Product, nowMs: number): ActivityEvent {
    const quantity = this.random() < 0.8 ? 1 : 2;
    user.cartItems += quantity;
    user.cartCents += quantity * product.priceCents;
    return {
      type: 'add_to_cart', userId: user.userId, sessionId: user.sessionId, ts: nowMs,
      path: shopPaths.product(product.id), productId: product.id, priceCents: product.priceCents, quantity,
    };
  }

  private checkout(user: SimulatedUser, nowMs: number): ActivityEvent {
    const event: ActivityEvent = {
      type: 'checkout', userId: user.userId, sessionId: user.sessionId, ts: nowMs,
      path: shopPaths.cart, items: user.cartItems, totalCents: user.cartCents,
    };
    user.cartItems = 0;
    user.cartCents = 0;
    return event;
  }

  private clickTarget(product: Product | undefined): string {
    if (product && this.random() < 0.5) return `product:${product.id}:details`;
    return pick(this.random, CLICK_TARGETS);
  }
}
