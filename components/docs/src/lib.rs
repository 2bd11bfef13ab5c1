//! The project's OpenAPI 3.1 document (`openapi.json` in this crate: every endpoint of
//! every service, the contract the hosts answer), served at `GET /api/movies/openapi.json`
//! (the path the seed API gave it; Spin routes that exact path here, the Worker's router
//! too); `GET /docs`: a Swagger UI page for it, and `GET /docs/{file}` for its assets. Nothing is fetched from a CDN: the page works offline on every host.
//!
//! The files are static files of the deployment, read through [`kit::Env::files`], not
//! compiled into the wasm (Swagger UI's bundle alone is ~1.7 MB).
//! `scripts/docs-assets.sh` (run by `scripts/setup.sh`, `scripts/build-worker.sh` and
//! `make components`) gathers them into `build/docs-assets/docs/`: the page and its
//! initializer from this crate's `static/`, and npm `swagger-ui-dist`'s CSS, bundle and
//! favicons (pinned in package.json). Each host serves that folder:
//!
//! - Spin: `[component.docs] files` in `spin.toml` mounts it at the guest's `/docs`;
//! - Workers: `[assets]` in `wrangler.toml` uploads `build/docs-assets` as static
//!   assets behind the `ASSETS` binding, with `run_worker_first = true`, so every
//!   request still reaches the Worker and this crate answers it with the headers every
//!   host sends (`x-request-id`, `nosniff`, the `ETag`, the CSP);
//! - native: a folder `Files` on `build/docs-assets`.
//!
//! Only the files listed in [`PAGE`] and [`ASSETS`] are served, with their content
//! types; any other name is the JSON 404. A listed file missing from the deployment
//! (the assets were not built) is a 500 `internal` naming the file and the fix.
//!
//! Its own crate and Spin component: only it gets the `files` mount. Build the
//! component with `bash scripts/build-components.sh docs`; the Worker
//! routes `/docs` here too. `cargo test -p docs` checks the routes, content types and
//! errors over in-memory files.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, StatusCode};
use kit::{ApiError, BodyLimit, Bytes, Ctx, Request, Response, Router};

/// Where the OpenAPI document is among the deployment's static files ([`kit::files`];
/// `scripts/docs-assets.sh` copies this crate's `openapi.json` there): 140 KB that stay
/// out of the wasm, as Swagger UI's files do. On Spin, a second `files` mount of this
/// component.
pub const OPENAPI_PATH: &str = "api/openapi.json";

/// Where the OpenAPI document is served.
pub const OPENAPI_ROUTE: &str = "/api/movies/openapi.json";

/// `GET /api/movies/openapi.json`: the OpenAPI document; its only error is the API's
/// 500 naming the missing file (a deployment made without its static files).
async fn openapi(env: &kit::Env) -> Result<Response, ApiError> {
    let body = kit::files::shipped(env, OPENAPI_PATH, "the OpenAPI document").await?;
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Changes only with a deploy, which the ETag follows.
    Ok(kit::revalidated(response, kit::REVALIDATE_ALWAYS))
}

/// The folder of the docs files under the host's file root (see [`kit::files`]).
pub const DIR: &str = "docs";

/// `Content-Security-Policy` of the page: scripts, styles, images and API calls from
/// this origin only (Swagger UI sets inline styles, and SVG icons use `data:` URLs).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// One static file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under [`DIR`].
    pub name: &'static str,
    pub content_type: &'static str,
}

/// The page, `GET /docs`: Swagger UI on `/api/movies/openapi.json`, every asset from
/// `/docs/`.
pub const PAGE: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
};

/// Every file `GET /docs/{file}` serves.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
    },
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "application/javascript; charset=utf-8",
    },
    Asset {
        name: "swagger-initializer.js",
        content_type: "application/javascript; charset=utf-8",
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
    },
    Asset {
        name: "favicon-16x16.png",
        content_type: "image/png",
    },
];

#[derive(Debug, Clone, Copy)]
enum Route {
    Page,
    Asset,
    OpenApi,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/docs", Route::Page)
        .route(Method::GET, "/docs/{file}", Route::Asset)
        .route(Method::GET, OPENAPI_ROUTE, Route::OpenApi)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves the OpenAPI document, the Swagger UI page and its assets.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "docs", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    match route {
        Route::OpenApi => openapi(ctx.env).await,
        Route::Page => {
            let body = read(ctx.env, &PAGE).await?;
            let mut response = file(body, &PAGE, "no-cache");
            response
                .headers_mut()
                .insert("content-security-policy", HeaderValue::from_static(CSP));
            Ok(response)
        }
        Route::Asset => {
            let name = params.get("file");
            // Only listed names reach the file store: nothing else can name a path
            // (`..`, `a/b`, `%5C`), and the store refuses such paths again.
            let asset = ASSETS
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(ApiError::not_found)?;
            let body = read(ctx.env, asset).await?;
            // Revalidated hourly: the URLs do not change when swagger-ui-dist does.
            Ok(file(body, asset, "public, max-age=3600"))
        }
    }
}

/// The file's bytes from the deployment's static files.
async fn read(env: &kit::Env, asset: &Asset) -> Result<Bytes, ApiError> {
    kit::files::shipped(env, &format!("{DIR}/{}", asset.name), "the Swagger UI file").await
}

fn file(body: Bytes, asset: &Asset, cache: &'static str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    kit::revalidated(response, cache)
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle, uses: [files]);

#[cfg(test)]
mod tests {
    use super::*;
    use kit::table::memory::MemoryKv;
    use kit::{Files, FilesError};
    use std::collections::HashMap;

    /// Static files in memory, checked like every host's.
    struct MemoryFiles(HashMap<String, Bytes>);

    #[async_trait::async_trait(?Send)]
    impl Files for MemoryFiles {
        async fn read(&self, path: &str) -> Result<Option<Bytes>, FilesError> {
            kit::files::check_path(path)?;
            Ok(self.0.get(path).cloned())
        }
    }

    /// The folder `scripts/docs-assets.sh` makes: our page and initializer as they are,
    /// stand-ins of swagger-ui-dist's files (the conformance suite checks the real ones
    /// on every host), minus the files named in `without`.
    fn built(without: &[&str]) -> MemoryFiles {
        let ours = |name: &str| {
            let path = format!("{}/static/{name}", env!("CARGO_MANIFEST_DIR"));
            Bytes::from(std::fs::read(path).unwrap())
        };
        let files = [
            ("index.html", ours("index.html")),
            ("swagger-initializer.js", ours("swagger-initializer.js")),
            ("swagger-ui.css", Bytes::from_static(b".swagger-ui {}")),
            (
                "swagger-ui-bundle.js",
                Bytes::from_static(b"var SwaggerUIBundle;"),
            ),
            ("favicon-32x32.png", Bytes::from_static(b"\x89PNG 32")),
            ("favicon-16x16.png", Bytes::from_static(b"\x89PNG 16")),
        ];
        let document = (
            OPENAPI_PATH.to_owned(),
            Bytes::from_static(include_bytes!("../openapi.json")),
        );
        MemoryFiles(
            files
                .into_iter()
                .filter(|(name, _)| !without.contains(name))
                .map(|(name, body)| (format!("docs/{name}"), body))
                .chain((!without.contains(&"openapi.json")).then_some(document))
                .collect(),
        )
    }

    fn get_from(files: MemoryFiles, path: &str) -> Response {
        let mut env = kit::host::native::env(MemoryKv::new(), kit::MapConfig::default());
        env.files = Box::new(files);
        env.log = kit::host::discard_log;
        let req = http::Request::builder()
            .uri(path)
            .body(Bytes::new())
            .unwrap();
        futures::executor::block_on(handle(req, &env))
    }

    fn get(path: &str) -> Response {
        get_from(built(&[]), path)
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    fn error_code(response: &Response) -> String {
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        body["error"]["code"].as_str().unwrap().to_owned()
    }

    #[test]
    fn page_loads_local_assets_and_the_project_document() {
        let page = get("/docs");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&page, "cache-control"), "no-cache");
        assert_eq!(header(&page, "content-security-policy"), CSP);
        assert!(page.headers().contains_key("etag"));
        let html = std::str::from_utf8(page.body()).unwrap();
        for asset in [
            "swagger-ui.css",
            "swagger-ui-bundle.js",
            "swagger-initializer.js",
            "favicon-32x32.png",
            "favicon-16x16.png",
        ] {
            assert!(html.contains(&format!("\"/docs/{asset}\"")), "{asset}");
            assert!(ASSETS.iter().any(|a| a.name == asset), "{asset} not served");
        }
        assert!(!html.contains("//cdn") && !html.contains("https://"));
        let init = std::str::from_utf8(get("/docs/swagger-initializer.js").body().as_ref())
            .unwrap()
            .to_owned();
        assert!(init.contains("url: \"/api/movies/openapi.json\""));
        assert!(init.contains("validatorUrl: null"));
    }

    #[test]
    fn openapi_document_is_served_as_openapi_3_1_json() {
        let response = get(OPENAPI_ROUTE);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), "application/json");
        let doc: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/movies/{year}/{title}"]["put"].is_object());
        // A deployment made without its static files says so instead of serving nothing.
        let bare = get_from(built(&["openapi.json"]), OPENAPI_ROUTE);
        assert_eq!(bare.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error_code(&bare), "internal");
    }

    #[test]
    fn assets_are_served_with_their_content_types() {
        for asset in ASSETS {
            let path = format!("/docs/{}", asset.name);
            let response = get(&path);
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), asset.content_type);
            assert_eq!(header(&response, "cache-control"), "public, max-age=3600");
            assert!(!response.headers().contains_key("content-security-policy"));
            assert!(response.headers().contains_key("x-request-id"));
            assert!(response.headers().contains_key("etag"));
            assert_eq!(
                Some(response.body()),
                built(&[]).0.get(&format!("docs/{}", asset.name)),
                "{path}"
            );
        }
        assert_eq!(
            header(&get("/docs/swagger-ui.css"), "content-type"),
            "text/css; charset=utf-8"
        );
    }

    #[test]
    fn a_matching_etag_is_304() {
        let first = get("/docs/swagger-ui-bundle.js");
        let tag = header(&first, "etag").to_owned();
        let req = http::Request::builder()
            .uri("/docs/swagger-ui-bundle.js")
            .header("if-none-match", &tag)
            .body(Bytes::new())
            .unwrap();
        let mut env = kit::host::native::env(MemoryKv::new(), kit::MapConfig::default());
        env.files = Box::new(built(&[]));
        env.log = kit::host::discard_log;
        let cached = futures::executor::block_on(handle(req, &env));
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert!(cached.body().is_empty());
    }

    #[test]
    fn unknown_files_and_paths_out_of_the_folder_are_json_404() {
        for path in [
            "/docs/nope.js",
            "/docs/swagger-ui-bundle.js.map",
            "/docs/index.html",
            "/docs/a/b",
            "/docs/..",
            "/docs/%2E%2E",
            "/docs/..%2F..%2FCargo.toml",
            "/docs/..%5C..%5CCargo.toml",
            "/docs/%2Fetc%2Fpasswd",
            "/docs/swagger-ui.css%00",
        ] {
            let response = get(path);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(header(&response, "content-type"), "application/json");
            assert_eq!(error_code(&response), "not_found", "{path}");
        }
    }

    #[test]
    fn a_listed_file_missing_from_the_deployment_is_a_500_naming_it_in_the_log() {
        for (path, missing) in [
            ("/docs", "index.html"),
            ("/docs/swagger-ui-bundle.js", "swagger-ui-bundle.js"),
        ] {
            let mut env = kit::host::native::env(MemoryKv::new(), kit::MapConfig::default());
            env.files = Box::new(built(&[missing]));
            env.log = kit::host::native::capture_log;
            let req = http::Request::builder()
                .uri(path)
                .body(Bytes::new())
                .unwrap();
            let response = futures::executor::block_on(handle(req, &env));
            assert_eq!(
                response.status(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}"
            );
            assert_eq!(header(&response, "content-type"), "application/json");
            assert_eq!(header(&response, "cache-control"), "no-store");
            assert!(!response.headers().contains_key("etag"));
            assert_eq!(error_code(&response), "internal");
            // The operator's fix is in the request's log line; the client sees none of it.
            let body = String::from_utf8_lossy(response.body()).into_owned();
            assert!(!body.contains(missing), "{body}");
            let line = kit::host::native::captured_log().pop().unwrap();
            assert!(line.contains(&format!("docs/{missing}")), "{line}");
            assert!(line.contains("scripts/docs-assets.sh"), "{line}");
        }
        // No static files at all (a host that binds none).
        let mut env = kit::host::native::env(MemoryKv::new(), kit::MapConfig::default());
        env.log = kit::host::discard_log;
        let req = http::Request::builder()
            .uri("/docs/favicon-16x16.png")
            .body(Bytes::new())
            .unwrap();
        let response = futures::executor::block_on(handle(req, &env));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
