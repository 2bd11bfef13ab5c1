// Renders the project's OpenAPI document. Same origin only: no validator badge (it
// would call validator.swagger.io), no URL bar, nothing fetched from the internet.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/movies/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
