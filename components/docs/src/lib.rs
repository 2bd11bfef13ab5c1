//! `GET /docs`: a Swagger UI page for the project's OpenAPI document
//! (`GET /api/movies/openapi.json`, served by the `movies` crate), and `GET /docs/{file}`
//! for its assets. The assets are npm `swagger-ui-dist` files (pinned in package.json)
//! embedded into the wasm at build time from `node_modules/` — `npm ci` (run by
//! `scripts/setup.sh`) must have run before this crate builds — so the page works with
//! no internet, on Spin and Workers alike; nothing is fetched from a CDN.
//!
//! Its own crate and Spin component because the bundle is ~1.7 MiB: the API components
//! stay small and fast to instantiate. Build the component with
//! `cargo build --release --target wasm32-wasip2 -p docs`; the Worker routes `/docs`
//! here too. `cargo test -p docs` checks the routes and content types.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, StatusCode};
use kit::{ApiError, BodyLimit, Bytes, Ctx, Request, Response, Router};

/// The files of npm `swagger-ui-dist`, read at compile time.
macro_rules! dist {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../node_modules/swagger-ui-dist/",
            $file
        ))
    };
}

/// The page: Swagger UI on `/api/movies/openapi.json`, every asset from `/docs/`.
const INDEX_HTML: &str = include_str!("index.html");

/// `Content-Security-Policy` of the page: scripts, styles, images and API calls from
/// this origin only (Swagger UI sets inline styles, and SVG icons use `data:` URLs).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// One static file under `/docs/`.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Every file `GET /docs/{file}` serves.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        body: dist!("swagger-ui.css"),
    },
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "application/javascript; charset=utf-8",
        body: dist!("swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-initializer.js",
        content_type: "application/javascript; charset=utf-8",
        body: include_bytes!("swagger-initializer.js"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        body: dist!("favicon-32x32.png"),
    },
    Asset {
        name: "favicon-16x16.png",
        content_type: "image/png",
        body: dist!("favicon-16x16.png"),
    },
];

#[derive(Debug, Clone, Copy)]
enum Route {
    Page,
    Asset,
}

fn router() -> Router<Route> {
    Router::new()
        .route(Method::GET, "/docs", Route::Page)
        .route(Method::GET, "/docs/{file}", Route::Asset)
}

/// The routes this service answers, for the OpenAPI coverage test.
pub fn routes() -> Vec<(Method, String)> {
    router().routes()
}

/// Serves the Swagger UI page and its assets.
pub async fn handle(req: Request, env: &kit::Env) -> Response {
    kit::serve(req, env, "docs", BodyLimit::DEFAULT, dispatch).await
}

async fn dispatch(req: Request, ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let (route, params) = ctx.resolve(&router(), &req)?;
    match route {
        Route::Page => {
            let mut response = file(
                INDEX_HTML.as_bytes(),
                "text/html; charset=utf-8",
                "no-cache",
            );
            response
                .headers_mut()
                .insert("content-security-policy", HeaderValue::from_static(CSP));
            Ok(response)
        }
        Route::Asset => {
            let name = params.get("file");
            let asset = ASSETS
                .iter()
                .find(|a| a.name == name)
                .ok_or_else(ApiError::not_found)?;
            // Revalidated hourly: the URLs do not change when swagger-ui-dist does.
            Ok(file(asset.body, asset.content_type, "public, max-age=3600"))
        }
    }
}

fn file(body: &'static [u8], content_type: &'static str, cache: &'static str) -> Response {
    let mut response = Response::new(Bytes::from_static(body));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    kit::revalidated(response, cache)
}

// The Spin component entry (wasm32-wasip2 only).
kit::spin_http_component!(crate::handle);

#[cfg(test)]
mod tests {
    use super::*;
    use kit::table::memory::MemoryKv;

    fn get(path: &str) -> Response {
        let env = kit::host::native::env(MemoryKv::new(), kit::MapConfig::default());
        let req = http::Request::builder()
            .uri(path)
            .body(Bytes::new())
            .unwrap();
        futures::executor::block_on(handle(req, &env))
    }

    fn content_type(response: &Response) -> &str {
        response.headers()[CONTENT_TYPE].to_str().unwrap()
    }

    #[test]
    fn page_loads_local_assets_and_the_project_document() {
        let page = get("/docs");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(content_type(&page), "text/html; charset=utf-8");
        let html = std::str::from_utf8(page.body()).unwrap();
        for asset in [
            "swagger-ui.css",
            "swagger-ui-bundle.js",
            "swagger-initializer.js",
        ] {
            assert!(html.contains(&format!("\"/docs/{asset}\"")), "{asset}");
        }
        assert!(!html.contains("//cdn") && !html.contains("https://"));
        let init = std::str::from_utf8(get("/docs/swagger-initializer.js").body().as_ref())
            .unwrap()
            .to_owned();
        assert!(init.contains("url: \"/api/movies/openapi.json\""));
        assert!(init.contains("validatorUrl: null"));
    }

    #[test]
    fn assets_are_served_with_their_content_types() {
        for (path, want, min_len) in [
            ("/docs/swagger-ui.css", "text/css; charset=utf-8", 100_000),
            (
                "/docs/swagger-ui-bundle.js",
                "application/javascript; charset=utf-8",
                1_000_000,
            ),
            ("/docs/favicon-32x32.png", "image/png", 100),
        ] {
            let response = get(path);
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(content_type(&response), want, "{path}");
            assert!(response.body().len() >= min_len, "{path}");
            assert!(response.headers().contains_key("x-request-id"));
        }
    }

    #[test]
    fn unknown_files_are_json_404() {
        for path in [
            "/docs/nope.js",
            "/docs/swagger-ui-bundle.js.map",
            "/docs/a/b",
        ] {
            let response = get(path);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(content_type(&response), "application/json");
        }
    }
}
