//! Usage report (`ipprotreport`): who used the service, from which IP,
//! when and for how long. Reads connection logs (`connlog`), optionally
//! FlexNet debug logs (`flexlm`), joins each checkout to its connection
//! (`join`), and renders text, CSV, JSON lines or HTML (`render`).
//! Pure except for reading the input files in `input`.
