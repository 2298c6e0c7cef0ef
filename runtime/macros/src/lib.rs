//! `#[gpm::main]` and `#[gpm::test]`: run an `async fn` on a gpm runtime, like tokio's
//! attribute macros. Use them through `gpm` (`#[gpm::main]`), not through this crate.
//!
//! # Expansion
//!
//! ```text
//! #[gpm::main(worker_threads = 4, steal_policy = "hierarchical")]
//! async fn main() -> R { body }
//! ```
//!
//! becomes
//!
//! ```text
//! fn main() -> R {
//!     let body = async { body };
//!     return gpm::runtime::Builder::new_multi_thread()
//!         .worker_threads(4)
//!         .steal_policy(gpm::steal::StealPolicy::Hierarchical)
//!         .build()
//!         .expect("Failed building the Runtime")
//!         .block_on(body);
//! }
//! ```
//!
//! `#[gpm::test]` does the same and adds `#[test]`; its body is polled through a
//! `Pin<&mut dyn Future<Output = R>>` (as tokio does for tests): one `block_on`
//! instantiation for every test. `#[gpm::main]` may sit on any `async fn`, a method with
//! arguments included (as tokio's); a test takes no arguments.
//!
//! # Arguments
//!
//! * `worker_threads = N`: a positive integer literal (default: the builder's, one P per
//!   core); it asks for the multi-thread runtime;
//! * `steal_policy = "random" | "affinity" | "hierarchical"` (default: the builder's, i.e.
//!   `GPM_STEAL`, else the cargo feature);
//! * `flavor = "multi_thread" | "current_thread"`: the runtime, as tokio's (default: a test
//!   gets the current-thread runtime, `Builder::new_current_thread`, as in tokio; `main`
//!   the multi-thread one);
//! * `start_paused = true | false`: the runtime's clock starts paused
//!   (`Builder::start_paused`; `gpm::time::pause`). It needs one worker, as tokio's needs
//!   the current-thread flavor: without a flavor or a worker count the runtime is the
//!   current-thread one, and `worker_threads` above 1 or `flavor = "multi_thread"` without
//!   `worker_threads = 1` is an error;
//! * `crate = "path"`: where gpm is, if renamed.
//!
//! Anything else, a repeated argument or a bad value is a compile error whose span is that
//! argument or value. The arguments are
//! parsed and checked with `syn` (and the output built with `quote`): hand-rolled token
//! parsing would have to re-implement what `syn` gives (spans, literals, the fn signature)
//! and would report worse errors.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Runs `async fn main` on a gpm runtime; see the crate documentation for the arguments.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), Kind::Main).into()
}

/// Runs an `async fn` test on a fresh gpm runtime; see the crate documentation.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), Kind::Test).into()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Main,
    Test,
}

/// The checked arguments.
#[derive(Default)]
struct Config {
    worker_threads: Option<(usize, Span)>,
    steal_policy: Option<Policy>,
    current_thread: Option<Span>,
    /// `flavor = "multi_thread"` was given (where).
    multi_thread: Option<Span>,
    /// `start_paused = true` was given (where).
    start_paused: Option<Span>,
    crate_path: Option<syn::Path>,
}

#[derive(Clone, Copy)]
enum Policy {
    Random,
    Affinity,
    Hierarchical,
}

fn expand(args: TokenStream2, item: TokenStream2, kind: Kind) -> TokenStream2 {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        // Not a function: report it and give the item back, so that other errors in it
        // still show.
        Err(error) => return with_error(item, error),
    };
    let config = match parse_config(args) {
        Ok(config) => config,
        Err(error) => return with_error(function.to_token_stream(), error),
    };
    if let Err(error) = check_function(&function, kind) {
        return with_error(function.to_token_stream(), error);
    }
    generate(function, &config, kind)
}

fn with_error(item: TokenStream2, error: syn::Error) -> TokenStream2 {
    let error = error.to_compile_error();
    quote! { #error #item }
}

fn parse_config(args: TokenStream2) -> syn::Result<Config> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut config = Config::default();
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let Meta::NameValue(pair) = &meta else {
            return Err(syn::Error::new(
                meta.span(),
                "expected `name = value`, e.g. `worker_threads = 4`",
            ));
        };
        let name = pair.path.get_ident().map(ToString::to_string);
        let name = name.unwrap_or_else(|| pair.path.to_token_stream().to_string());
        if seen.contains(&name) {
            let message = format!("`{name}` is given more than once");
            return Err(syn::Error::new(pair.path.span(), message));
        }
        apply(&mut config, &name, pair)?;
        seen.push(name);
    }
    if let (Some((_, span)), Some(_)) = (config.worker_threads, config.current_thread) {
        let message = "`worker_threads` needs `flavor = \"multi_thread\"` (as in tokio)";
        return Err(syn::Error::new(span, message));
    }
    check_start_paused(&config)?;
    Ok(config)
}

/// A paused clock needs one worker (tokio: the current-thread flavor).
fn check_start_paused(config: &Config) -> syn::Result<()> {
    if config.start_paused.is_none() {
        return Ok(());
    }
    let message = "`start_paused` needs one worker thread: use `flavor = \"current_thread\"` \
                   or no `worker_threads` (as tokio's needs the current-thread flavor)";
    match (config.worker_threads, config.multi_thread) {
        (Some((count, span)), _) if count > 1 => Err(syn::Error::new(span, message)),
        (None, Some(span)) => Err(syn::Error::new(span, message)),
        _ => Ok(()),
    }
}

/// Checks one `name = value` and records it.
fn apply(config: &mut Config, name: &str, pair: &syn::MetaNameValue) -> syn::Result<()> {
    let value = &pair.value;
    match name {
        "worker_threads" => config.worker_threads = Some((parse_workers(value)?, value.span())),
        "steal_policy" => config.steal_policy = Some(parse_policy(value)?),
        "flavor" => match parse_flavor(value)? {
            Flavor::CurrentThread(span) => config.current_thread = Some(span),
            Flavor::MultiThread(span) => config.multi_thread = Some(span),
        },
        "crate" => config.crate_path = Some(string_literal(value)?.parse()?),
        "start_paused" => {
            if parse_bool(value)? {
                config.start_paused = Some(pair.path.span());
            }
        }
        _ => {
            let message = format!(
                "unknown argument `{name}`; expected `worker_threads`, `steal_policy`, \
                 `flavor`, `start_paused` or `crate`"
            );
            return Err(syn::Error::new(pair.path.span(), message));
        }
    }
    Ok(())
}

fn parse_workers(value: &Expr) -> syn::Result<usize> {
    let Expr::Lit(ExprLit {
        lit: Lit::Int(int), ..
    }) = value
    else {
        let message = "`worker_threads` must be a positive integer literal";
        return Err(syn::Error::new(value.span(), message));
    };
    match int.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new(
            int.span(),
            "`worker_threads` must be at least 1: a runtime needs a P",
        )),
        Ok(count) => Ok(count),
        Err(error) => Err(syn::Error::new(int.span(), error)),
    }
}

fn parse_policy(value: &Expr) -> syn::Result<Policy> {
    let text = string_literal(value)?;
    match text.value().trim().to_ascii_lowercase().as_str() {
        "random" => Ok(Policy::Random),
        "affinity" => Ok(Policy::Affinity),
        "hierarchical" => Ok(Policy::Hierarchical),
        other => Err(syn::Error::new(
            text.span(),
            format!(
                "unknown stealing policy {other:?}: expected \"random\", \"affinity\" or \
                 \"hierarchical\""
            ),
        )),
    }
}

/// `Some(span)` for `current_thread`, `None` for `multi_thread`.
/// A `flavor = ".."` value and where it was written.
enum Flavor {
    MultiThread(Span),
    CurrentThread(Span),
}

fn parse_flavor(value: &Expr) -> syn::Result<Flavor> {
    let text = string_literal(value)?;
    match text.value().as_str() {
        "multi_thread" => Ok(Flavor::MultiThread(text.span())),
        "current_thread" => Ok(Flavor::CurrentThread(text.span())),
        other => Err(syn::Error::new(
            text.span(),
            format!("unknown flavor {other:?}: expected \"multi_thread\" or \"current_thread\""),
        )),
    }
}

fn parse_bool(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(flag),
            ..
        }) => Ok(flag.value),
        _ => Err(syn::Error::new(value.span(), "expected `true` or `false`")),
    }
}

fn string_literal(value: &Expr) -> syn::Result<syn::LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text.clone()),
        _ => Err(syn::Error::new(value.span(), "expected a string literal")),
    }
}

fn check_function(function: &ItemFn, kind: Kind) -> syn::Result<()> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "the `async` keyword is missing from the function declaration",
        ));
    }
    // As tokio's: `#[gpm::main]` may sit on any async fn (a method, with arguments).
    if kind == Kind::Test && !sig.inputs.is_empty() {
        let message = "a test function cannot take arguments";
        return Err(syn::Error::new(sig.inputs.span(), message));
    }
    let test_attribute = function.attrs.iter().find(|a| a.path().is_ident("test"));
    if let (Kind::Test, Some(attribute)) = (kind, test_attribute) {
        return Err(syn::Error::new(
            attribute.span(),
            "`#[gpm::test]` already adds `#[test]`; remove this one",
        ));
    }
    Ok(())
}

fn generate(mut function: ItemFn, config: &Config, kind: Kind) -> TokenStream2 {
    function.sig.asyncness = None;
    let gpm = match &config.crate_path {
        Some(path) => path.to_token_stream(),
        None => quote! { ::gpm },
    };
    let constructor = if uses_current_thread(config, kind) {
        quote! { new_current_thread }
    } else {
        quote! { new_multi_thread }
    };
    let settings = builder_settings(config, &gpm, kind);
    let output = match &function.sig.output {
        syn::ReturnType::Default => quote! { () },
        syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let block = &function.block;
    let span = block.span();
    // Tests go through one `dyn Future` type (see the crate docs); `main` keeps its own
    // future type, so that `-> !` (not a type a `dyn` binding can name) works, as in tokio.
    let pin = match kind {
        Kind::Test => quote_spanned! {span=>
            let body = ::core::pin::pin!(body);
            let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output>> = body;
        },
        Kind::Main => quote! {},
    };
    let body = quote_spanned! {span=>
        {
            let body = async #block;
            #pin
            #[allow(
                clippy::expect_used,
                clippy::needless_return,
                clippy::diverging_sub_expression
            )]
            {
                return #gpm::runtime::Builder::#constructor()
                    #settings
                    .build()
                    .expect("Failed building the Runtime")
                    .block_on(body);
            }
        }
    };
    *function.block = syn::parse_quote!(#body);
    let test_attribute = match kind {
        Kind::Test => quote! { #[::core::prelude::v1::test] },
        Kind::Main => quote! {},
    };
    quote! { #test_attribute #function }
}

/// Whether the runtime is gpm's current-thread runtime: with `flavor = "current_thread"`,
/// and, as tokio's, for a test or a paused clock without a multi-thread flavor or a worker
/// count.
fn uses_current_thread(config: &Config, kind: Kind) -> bool {
    let unspecified = config.multi_thread.is_none() && config.worker_threads.is_none();
    config.current_thread.is_some()
        || (unspecified && (matches!(kind, Kind::Test) || config.start_paused.is_some()))
}

/// The builder calls the arguments ask for.
fn builder_settings(config: &Config, gpm: &TokenStream2, kind: Kind) -> TokenStream2 {
    let mut settings = TokenStream2::new();
    // A paused clock on the multi-thread runtime needs one worker.
    let one_worker = config.start_paused.is_some() && !uses_current_thread(config, kind);
    let workers = match config.worker_threads {
        Some((count, _)) => Some(count),
        None => one_worker.then_some(1),
    };
    if let Some(count) = workers {
        settings.extend(quote! { .worker_threads(#count) });
    }
    if config.start_paused.is_some() {
        settings.extend(quote! { .start_paused(true) });
    }
    if let Some(policy) = config.steal_policy {
        let policy = match policy {
            Policy::Random => quote! { #gpm::steal::StealPolicy::Random },
            Policy::Affinity => {
                quote! { #gpm::steal::StealPolicy::Affinity(#gpm::steal::AffinityWeights::DEFAULT) }
            }
            Policy::Hierarchical => quote! { #gpm::steal::StealPolicy::Hierarchical },
        };
        settings.extend(quote! { .steal_policy(#policy) });
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(args: TokenStream2) -> String {
        match parse_config(args) {
            Ok(_) => panic!("arguments accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[::core::prelude::v1::test]
    fn bad_arguments_are_named() {
        assert!(error_of(quote!(worker_threads = 0)).contains("at least 1"));
        assert!(error_of(quote!(worker_threads = "2")).contains("integer literal"));
        assert!(error_of(quote!(steal_policy = "greedy")).contains("\"greedy\""));
        assert!(error_of(quote!(flavor = "local")).contains("unknown flavor"));
        assert!(error_of(quote!(workers = 2)).contains("unknown argument `workers`"));
        assert!(error_of(quote!(start_paused = 1)).contains("`true` or `false`"));
        let many = quote!(start_paused = true, worker_threads = 2);
        assert!(error_of(many).contains("one worker thread"));
        let multi = quote!(flavor = "multi_thread", start_paused = true);
        assert!(error_of(multi).contains("current_thread"));
        assert!(error_of(quote!(worker_threads)).contains("name = value"));
        assert!(error_of(quote!(worker_threads = 1, worker_threads = 2)).contains("more than once"));
        let both = quote!(flavor = "current_thread", worker_threads = 2);
        assert!(error_of(both).contains("multi_thread"));
    }

    #[::core::prelude::v1::test]
    fn good_arguments_become_builder_calls() {
        let config = parse_config(quote!(worker_threads = 4, steal_policy = "Hierarchical"))
            .unwrap_or_else(|e| panic!("{e}"));
        let calls = builder_settings(&config, &quote!(::gpm), Kind::Main).to_string();
        assert!(calls.contains("worker_threads (4usize)"), "{calls}");
        assert!(calls.contains("StealPolicy :: Hierarchical"), "{calls}");
        let paused = parse_config(quote!(start_paused = true)).unwrap_or_else(|e| panic!("{e}"));
        assert!(uses_current_thread(&paused, Kind::Main));
        let calls = builder_settings(&paused, &quote!(::gpm), Kind::Test).to_string();
        assert!(calls.contains("start_paused (true)"), "{calls}");
        let one = parse_config(quote!(start_paused = true, worker_threads = 1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!uses_current_thread(&one, Kind::Test));
        let calls = builder_settings(&one, &quote!(::gpm), Kind::Test).to_string();
        assert!(calls.contains("worker_threads (1usize)"), "{calls}");
        let plain = parse_config(quote!()).unwrap_or_else(|e| panic!("{e}"));
        assert!(uses_current_thread(&plain, Kind::Test));
        assert!(!uses_current_thread(&plain, Kind::Main));
        let running = parse_config(quote!(start_paused = false)).unwrap_or_else(|e| panic!("{e}"));
        let calls = builder_settings(&running, &quote!(::gpm), Kind::Main).to_string();
        assert!(!calls.contains("start_paused"), "{calls}");
    }
}
