/** The model registry with each model's readiness and the state of each upstream, probed on load. */
import { api } from '../api';
import { ErrorMessage, Loading } from '../components/common';
import { formatInstant, formatNumber } from '../format';
import { useLoad } from '../hooks';
import type { ModelList } from '../types';

export function Models() {
  const models = useLoad(() => api<ModelList>('GET', '/admin/models'), []);
  return (
    <main>
      <div class="page-head">
        <h1>Models</h1>
        <button type="button" onClick={models.reload} disabled={models.loading}>
          Check again
        </button>
      </div>
      <ErrorMessage error={models.error} />
      {models.loading && !models.data ? <Loading /> : null}
      {models.data ? (
        <>
          <p class="muted">Upstreams probed {formatInstant(models.data.checked_at)} with their health endpoints.</p>
          <div class="model-list">
            {models.data.data.map((model) => (
              <article class="model" key={model.name} data-model={model.name}>
                <header>
                  <h2>{model.name}</h2>
                  <span class={`badge ${model.ready ? 'badge-active' : 'badge-revoked'}`}>
                    {model.ready ? 'ready' : 'not ready'}
                  </span>
                  {model.default ? <span class="badge badge-info">default</span> : null}
                  {model.required ? <span class="badge badge-info">required</span> : null}
                </header>
                <dl class="fields">
                  <div>
                    <dt>Provider</dt>
                    <dd>
                      {model.provider} ({model.kind})
                    </dd>
                  </div>
                  <div>
                    <dt>Upstream model</dt>
                    <dd>{model.upstream_model}</dd>
                  </div>
                  <div>
                    <dt>Tokens</dt>
                    <dd>
                      default {formatNumber(model.default_max_new_tokens)}, at most {formatNumber(model.max_new_tokens)}
                    </dd>
                  </div>
                  <div>
                    <dt>Timeout</dt>
                    <dd>{formatNumber(model.timeout_ms)} ms</dd>
                  </div>
                  <div>
                    <dt>Fallbacks</dt>
                    <dd>{model.fallbacks.length > 0 ? model.fallbacks.join(', ') : 'none'}</dd>
                  </div>
                </dl>
                <div class="table-wrap">
                  <table class="upstreams">
                    <thead>
                      <tr>
                        <th scope="col">Upstream</th>
                        <th scope="col">State</th>
                        <th scope="col">Breaker</th>
                        <th scope="col" class="num">
                          Weight
                        </th>
                        <th scope="col" class="num">
                          Probe
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {model.upstreams.map((upstream) => (
                        <tr key={upstream.upstream} data-upstream={upstream.upstream}>
                          <td>
                            <code>{upstream.upstream}</code>
                          </td>
                          <td>
                            <span class={`badge state ${upstream.state === 'up' ? 'badge-active' : 'badge-revoked'}`}>
                              {upstream.state}
                            </span>
                            {upstream.reason ? <span class="reason">{upstream.reason}</span> : null}
                          </td>
                          <td>
                            <span
                              class={`badge breaker ${upstream.breaker === 'closed' ? 'badge-active' : 'badge-revoked'}`}
                            >
                              {upstream.breaker.replace('_', '-')}
                            </span>
                          </td>
                          <td class="num">{upstream.weight}</td>
                          <td class="num">{formatNumber(upstream.latency_ms)} ms</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </article>
            ))}
          </div>
        </>
      ) : null}
    </main>
  );
}
