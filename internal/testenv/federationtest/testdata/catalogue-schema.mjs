// The catalogue subgraph's schema and data: it owns a product's catalogue
// fields (description, brand) and extends the inventory subgraph's Product
// by its other key, sku.
import { parse } from 'graphql';

export const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Query {
    "The products the catalogue features, in its order."
    featured: [Product!]!
  }

  type Product @key(fields: "sku") {
    sku: String!
    description: String!
    brand: String!
  }
`);

// The catalogue's products, by SKU; the Go test creates them in inventory.
export const products = {
  'FED-MUG': { description: 'A blue stoneware mug, 350 ml.', brand: 'Potter & Sons' },
  'FED-TEA': { description: 'Loose-leaf breakfast tea, 250 g.', brand: 'Leaf Co.' },
};

export const resolvers = {
  Query: {
    featured: () => Object.keys(products).map((sku) => ({ sku })),
  },
  Product: {
    __resolveReference: ({ sku }) => (products[sku] ? { sku, ...products[sku] } : null),
    description: ({ sku }) => products[sku].description,
    brand: ({ sku }) => products[sku].brand,
  },
};
