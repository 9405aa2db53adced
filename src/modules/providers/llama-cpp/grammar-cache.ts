/**
 * Structured outputs on the embedded engine (`params.responseFormat`): the sampler is
 * constrained by a grammar, so even a model that knows no JSON can only write JSON: `json_object`
 * uses node-llama-cpp's JSON grammar, `json_schema` a grammar built from the schema
 * (`llama.createGrammarForJsonSchema`, cached per schema). node-llama-cpp reads what it
 * understands of a schema and lets the rest be any value; a schema it still cannot turn into a
 * grammar is a 400 naming `response_format`. The output is valid once the grammar is complete; a
 * generation cut by max_new_tokens first ends with finish "length" and incomplete JSON, as with
 * any backend.
 */
import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import { UnsupportedRequestError } from '../../../contracts/backend-errors';
import type { ResponseFormat } from '../../../contracts/generation';

const MAX_CACHED_GRAMMARS = 64;

export class GrammarCache {
  /** Grammars of the response formats seen, by canonical JSON (building one is not free). */
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(private readonly llama: Llama) {}

  /** The grammar that keeps the output in `format`; 400 naming `response_format` when none can be built. */
  grammarFor(format: ResponseFormat): Promise<LlamaGrammar> {
    const key = JSON.stringify(format.type === 'json_schema' ? format.schema : format.type);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      grammar = (
        format.type === 'json_schema'
          ? this.llama.createGrammarForJsonSchema(format.schema as never)
          : this.llama.getGrammarFor('json')
      ) as Promise<LlamaGrammar>;
      // Bounded: a client sending ever-new schemas must not grow memory without end.
      if (this.grammars.size >= MAX_CACHED_GRAMMARS) this.grammars.delete(this.grammars.keys().next().value!);
      this.grammars.set(key, grammar);
      grammar.catch(() => this.grammars.delete(key));
    }
    return grammar.catch((err: unknown) => {
      throw new UnsupportedRequestError(
        `the JSON schema cannot be turned into a grammar: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`,
        'response_format',
      );
    });
  }

  clear(): void {
    this.grammars.clear();
  }
}
