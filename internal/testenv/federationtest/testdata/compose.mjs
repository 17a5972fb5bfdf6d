// Composes the inventory subgraph (its SDL from _service { sdl }, in the
// file $INVENTORY_SDL, served at $INVENTORY_URL) with the catalogue
// subgraph (at $CATALOGUE_URL) and prints the supergraph SDL; composition
// errors are printed to stderr and exit 1.
import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { composeServices } from '@apollo/composition';
import { typeDefs as catalogue } from './catalogue-schema.mjs';

const result = composeServices([
  { name: 'inventory', url: process.env.INVENTORY_URL, typeDefs: parse(readFileSync(process.env.INVENTORY_SDL, 'utf8')) },
  { name: 'catalogue', url: process.env.CATALOGUE_URL, typeDefs: catalogue },
]);
if (result.errors) {
  for (const e of result.errors) console.error(`${e.extensions?.code ?? 'ERROR'}: ${e.message}`);
  process.exit(1);
}
for (const h of result.hints ?? []) console.error(`hint ${h.definition.code}: ${h.message}`);
process.stdout.write(result.supergraphSdl);
