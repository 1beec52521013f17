/**
 * The shopping cart, kept in localStorage so it survives reloads and is
 * shared by the shop's tabs. Only product ids and quantities are stored;
 * names and prices come from the catalog.
 */
import { productById, type Product } from './catalog.ts';

const CART_KEY = 'runnel-demo:cart';
/** A cart line's quantity cap: keeps a stuck button from producing absurd orders. */
const MAX_QUANTITY_PER_LINE = 99;

export interface CartLine {
  product: Product;
  quantity: number;
}

function readCart(storage: Storage): Record<string, number> {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(CART_KEY) ?? '{}');
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, number>) : {};
  } catch {
    return {}; // A corrupt cart is an empty cart, not a broken shop.
  }
}

export class Cart {
  constructor(private readonly storage: Storage = localStorage) {}

  lines(): CartLine[] {
    const lines: CartLine[] = [];
    for (const [id, quantity] of Object.entries(readCart(this.storage))) {
      const product = productById(id);
      if (product && Number.isInteger(quantity) && quantity > 0) lines.push({ product, quantity });
    }
    return lines;
  }

  itemCount(): number {
    return this.lines().reduce((sum, line) => sum + line.quantity, 0);
  }

  totalCents(): number {
    return this.lines().reduce((sum, line) => sum + line.quantity * line.product.priceCents, 0);
  }

  add(productId: string, quantity: number): void {
    const cart = readCart(this.storage);
    cart[productId] = Math.min(MAX_QUANTITY_PER_LINE, (cart[productId] ?? 0) + quantity);
    this.storage.setItem(CART_KEY, JSON.stringify(cart));
  }

  remove(productId: string): void {
    const cart = readCart(this.storage);
    delete cart[productId];
    this.storage.setItem(CART_KEY, JSON.stringify(cart));
  }

  clear(): void {
    this.storage.removeItem(CART_KEY);
  }
}
