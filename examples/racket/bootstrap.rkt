#lang racket/base
;; A Lambda custom runtime in Racket: `raco exe` makes this module one executable, `bootstrap`.
;; It loops on the Runtime API (net/http-client) and answers each event with a JSON object.
(require json net/http-client racket/string)

(define api (getenv "AWS_LAMBDA_RUNTIME_API"))
(define host (car (string-split api ":")))
(define port (string->number (cadr (string-split api ":"))))

(define (call method path [body #f])
  (define-values (status headers in)
    (http-sendrecv host (string-append "/2018-06-01/runtime/" path)
                   #:port port #:method method #:data body))
  (values headers (read-bytes-all in)))

(define (read-bytes-all in)
  (let loop ([acc #""])
    (define chunk (read-bytes 65536 in))
    (if (eof-object? chunk) acc (loop (bytes-append acc chunk)))))

(define (header headers name)
  (for/or ([h headers])
    (define m (regexp-match (byte-regexp (bytes-append #"(?i:^" name #"): *(.*)$")) h))
    (and m (bytes->string/utf-8 (cadr m)))))

(define (handle event)
  (hasheq 'implementation (format "Racket ~a (~a)" (version) (system-type 'vm))
          'keys (if (hash? event) (map symbol->string (hash-keys event)) '())))

(let loop ()
  (define-values (headers body) (call "GET" "invocation/next"))
  (define id (header headers #"Lambda-Runtime-Aws-Request-Id"))
  (with-handlers ([exn:fail? (lambda (e)
                               (call "POST" (format "invocation/~a/error" id)
                                     (jsexpr->bytes (hasheq 'errorType "RacketError"
                                                            'errorMessage (exn-message e)))))])
    (call "POST" (format "invocation/~a/response" id)
          (jsexpr->bytes (handle (bytes->jsexpr body)))))
  (loop))
