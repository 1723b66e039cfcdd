//! What every request meets before any route: the `Host` rule of RFC 9112 §3.2
//! ([`crate::host`]), and the deadline of its body ([`conn::BodyClock`]): once that has passed,
//! the answer is 408 (RFC 9110 §15.5.9) whatever the handler made of the cut body, and the
//! connection closes. And, when `[serve] access_log` is on, the request's line in the access
//! log ([`crate::access_line`]) once its answer is ready.
//!
//! A tower layer rather than an `axum::middleware::from_fn`: that clones the whole stack under
//! it and boxes a future on every request, a cost the heartbeat benchmark
//! (`bench/heartbeats.sh`) could see. Here a request that passes costs one check before and
//! one after.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, Version, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::{ApiError, conn, host};

/// The layer: see the module docs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EdgeLayer {
    /// Whether each request gets its line in the access log.
    pub access_log: bool,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            access_log: self.access_log,
        }
    }
}

/// [`EdgeLayer`]'s service.
#[derive(Clone, Debug)]
pub(crate) struct Edge<S> {
    inner: S,
    access_log: bool,
}

/// What the access log's line needs of a request, taken before the route has it.
#[derive(Debug)]
pub(crate) struct Logged {
    started: Instant,
    method: Method,
    path: String,
}

impl Logged {
    fn of(request: &Request) -> Self {
        Self {
            started: Instant::now(),
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
        }
    }

    fn write(&self, response: &Response) {
        let bytes = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        crate::access_line(
            self.method.as_str(),
            &self.path,
            response.status().as_u16(),
            bytes,
            self.started.elapsed(),
        );
    }
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let logged = self.access_log.then(|| Logged::of(&request));
        if let Some(problem) = host::host_problem(request.version(), request.headers()) {
            let response = ApiError::BadRequest(problem).into_response();
            if let Some(logged) = logged {
                logged.write(&response);
            }
            return EdgeFuture::Refused {
                response: Some(response),
            };
        }
        EdgeFuture::Passed {
            clock: request.extensions().get::<conn::BodyClock>().cloned(),
            http1: request.version() < Version::HTTP_2,
            logged,
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer to a request at the edge: refused there, or the route's, unless its body
    /// came too late.
    #[project = EdgeProjection]
    pub(crate) enum EdgeFuture<F> {
        Refused { response: Option<Response> },
        Passed {
            #[pin]
            inner: F,
            clock: Option<conn::BodyClock>,
            http1: bool,
            logged: Option<Logged>,
        },
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            // Taken once: a future is not polled again after it is ready.
            EdgeProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
            EdgeProjection::Passed {
                inner,
                clock,
                http1,
                logged,
            } => {
                let response = ready!(inner.poll(cx))?;
                let response = match clock {
                    Some(clock) if clock.expired.load(Ordering::Relaxed) => late(clock, *http1),
                    _ => response,
                };
                if let Some(logged) = logged {
                    logged.write(&response);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// The 408 of a body that did not arrive whole within its deadline.
fn late(clock: &conn::BodyClock, http1: bool) -> Response {
    let mut late = ApiError::RequestTimeout(format!(
        "the request body did not arrive whole within {} s of its head ([serve] body_timeout_s)",
        clock.timeout.as_secs()
    ))
    .into_response();
    // "A server SHOULD send the close connection option" with a 408 (RFC 9110 §15.5.9);
    // HTTP/2 has no connection header (RFC 9113 §8.2.2).
    if http1 {
        late.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    late
}
