package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/cenkalti/backoff/v5"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/shopstack/inventory/internal/inventory"
)

// OIDC says which OpenID provider's access tokens are accepted, and how
// their claims name a role.
type OIDC struct {
	// Issuer is the provider's issuer URL: its configuration is discovered
	// at Issuer + "/.well-known/openid-configuration", and tokens must
	// carry it as iss.
	Issuer string
	// Audience must be among a token's aud: the identifier the provider
	// gives this API (a resource indicator, an Auth0 API identifier, a
	// Keycloak client).
	Audience string
	// RolesClaim, if set, names the claim whose values (a string or an
	// array of strings) are role names: reader, operator, admin. A name
	// with dots that is not a claim of its own is a path into nested
	// objects (realm_access.roles). Unset, roles come from the scopes in
	// scope or scp (see ScopeRoles).
	RolesClaim string
	// HTTPClient fetches the discovery document and the keys; nil: a
	// client with a 10-second timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat; zero: 30s.
	Leeway time.Duration
	// RefreshInterval is how often the keys are fetched anew; zero: an
	// hour.
	RefreshInterval time.Duration
	// UnknownKeyInterval is the least time between two fetches of the keys
	// caused by a token signed with a key not yet known (a rotation); zero:
	// 10s. Tokens with made-up key IDs cannot make it fetch more often.
	UnknownKeyInterval time.Duration
	// DiscoveryTimeout bounds the start-up's tries to reach the provider;
	// zero: 30s.
	DiscoveryTimeout time.Duration
}

// ScopeRoles are the scopes that grant a role; a token with several has
// the highest.
var ScopeRoles = map[string]inventory.Role{
	"inventory:read":  inventory.RoleReader,
	"inventory:write": inventory.RoleOperator,
	"inventory:admin": inventory.RoleAdmin,
}

// asymmetric are the signing algorithms a token may use, if the provider
// advertises them: never none, never an HMAC, whose key would be a secret
// the provider shares with every resource server.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// verifier checks a provider's access tokens locally: signatures against
// its cached keys, then issuer, audience and lifetime.
type verifier struct {
	cfg    OIDC
	issuer string
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
	stop   context.CancelFunc
}

// providerMetadata is what discovery tells beyond what go-oidc keeps.
type providerMetadata struct {
	JWKSURI string   `json:"jwks_uri"`
	Algs    []string `json:"id_token_signing_alg_values_supported"`
}

// newVerifier discovers the provider and fetches its keys, retrying for
// up to cfg.DiscoveryTimeout while it does not answer.
func newVerifier(ctx context.Context, cfg OIDC, now func() time.Time, log *slog.Logger) (*verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("OpenID Connect needs an issuer and an audience")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	cfg.Leeway = orDefault(cfg.Leeway, 30*time.Second)
	cfg.RefreshInterval = orDefault(cfg.RefreshInterval, time.Hour)
	cfg.UnknownKeyInterval = orDefault(cfg.UnknownKeyInterval, 10*time.Second)
	cfg.DiscoveryTimeout = orDefault(cfg.DiscoveryTimeout, 30*time.Second)
	discover := func() (*verifier, error) {
		v, err := discoverOnce(ctx, cfg, now, log)
		if err != nil {
			log.Warn("OpenID provider not reachable yet", "issuer", cfg.Issuer, "err", err)
		}
		return v, err
	}
	v, err := backoff.Retry(ctx, discover, backoff.WithBackOff(backoff.NewExponentialBackOff()),
		backoff.WithMaxElapsedTime(cfg.DiscoveryTimeout))
	if err != nil {
		return nil, fmt.Errorf("OpenID provider %s: %w", cfg.Issuer, err)
	}
	return v, nil
}

func discoverOnce(ctx context.Context, cfg OIDC, now func() time.Time, log *slog.Logger) (*verifier, error) {
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if _, ok := errors.AsType[*oidc.IssuerMismatchError](err); ok {
		return nil, backoff.Permanent(fmt.Errorf("discovery: %w", err)) // a misconfiguration: asking again will not help
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta providerMetadata
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, backoff.Permanent(errors.New("discovery: the provider names no jwks_uri"))
	}
	algs := advertised(meta.Algs)
	if len(algs) == 0 {
		return nil, backoff.Permanent(fmt.Errorf("discovery: the provider signs with %v; none is an asymmetric algorithm accepted here (%v)", meta.Algs, asymmetric))
	}
	// The keys are refreshed in the background until Close, on a context
	// of their own: ctx only bounds start-up.
	keysCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	noErrorOnFirstFetch := false
	keys, err := keyfunc.NewDefaultOverrideCtx(keysCtx, []string{meta.JWKSURI}, keyfunc.Override{
		Client:                    cfg.HTTPClient,
		HTTPTimeout:               cfg.HTTPClient.Timeout,
		NoErrorReturnFirstHTTPReq: &noErrorOnFirstFetch,
		RefreshInterval:           cfg.RefreshInterval,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(cfg.UnknownKeyInterval), 1),
		// A token with an unknown key waits at most this long for the
		// limiter, and the fetch it then makes must finish within it; a
		// token that would wait longer is refused at once.
		RateLimitWaitMax: 5 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("OpenID provider's keys not refreshed", "jwks", u, "err", err)
			}
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("keys: %w", err)
	}
	// The issuer a token must name is the one discovery confirmed (go-oidc
	// refuses a document whose issuer is not the one asked for).
	parser := jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
	)
	log.Info("OpenID provider discovered", "issuer", cfg.Issuer, "jwks", meta.JWKSURI, "algorithms", algs, "audience", cfg.Audience)
	return &verifier{cfg: cfg, issuer: cfg.Issuer, keys: keys, parser: parser, stop: stop}, nil
}

// advertised returns the algorithms of algs that are accepted here.
func advertised(algs []string) []string {
	var out []string
	for _, a := range algs {
		if slices.Contains(asymmetric, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// refusal is why a token was refused: the client's message, and the
// cause to log.
type refusal struct {
	message string
	cause   error
}

func (r *refusal) Error() string { return r.message + ": " + r.cause.Error() }
func (r *refusal) Unwrap() error { return r.cause }

// verify returns the principal of an access token.
func (v *verifier) verify(ctx context.Context, raw string) (inventory.Principal, error) {
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keys.KeyfuncCtx(ctx)); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return inventory.Principal{}, &refusal{"the access token has expired", err}
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return inventory.Principal{}, &refusal{"the access token is not valid yet", err}
		}
		return inventory.Principal{}, &refusal{msgInvalid, err}
	}
	name := principalName(claims)
	if name == "" {
		return inventory.Principal{}, &refusal{msgInvalid, errors.New("the token has no sub, client_id or azp")}
	}
	p := inventory.Principal{Name: name, Role: rolesOf(claims, v.cfg.RolesClaim)}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time
	}
	return p, nil
}

// maxNameLength bounds the actor a token may name on ledger rows.
const maxNameLength = 200

// principalName is whom a token names: its subject, or for a token a
// client got for itself without one, the client.
func principalName(claims jwt.MapClaims) string {
	for _, c := range []string{"sub", "client_id", "azp"} {
		if s, ok := claims[c].(string); ok && s != "" {
			if len(s) > maxNameLength {
				return ""
			}
			return s
		}
	}
	return ""
}

// close stops the background refresh of the keys.
func (v *verifier) close() { v.stop() }
