/**
 * The shop's catalog and page map, shared by the shop pages, the build (which
 * writes one static page per product) and the traffic simulation (which
 * browses the same paths a real visitor would).
 */
import catalog from './catalog.json' with { type: 'json' };

export interface Product {
  id: string;
  name: string;
  priceCents: number;
  /** Two-letter monogram drawn on the product tile (renders with any font, unlike emoji). */
  mark: string;
  color: string;
  blurb: string;
}

export const shopName: string = catalog.shopName;
export const products: readonly Product[] = catalog.products;

export const shopPaths = {
  home: '/shop/index.html',
  products: '/shop/products.html',
  cart: '/shop/cart.html',
  product: (id: string): string => `/shop/product-${id}.html`,
} as const;

export function productById(id: string): Product | undefined {
  return products.find((product) => product.id === id);
}

/** `/shop/product-lamp.html` → the lamp; any other path → undefined. */
export function productForPath(path: string): Product | undefined {
  const match = /^\/shop\/product-([a-z0-9-]+)\.html$/.exec(path);
  return match ? productById(match[1]) : undefined;
}

export function formatPrice(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
