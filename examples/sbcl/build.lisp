;;;; sbcl --non-interactive --load build.lisp [compressed]
;;;; Writes ./bootstrap: an executable whose core is appended to the SBCL runtime.
;;;; With the argument `compressed` the core is zstd-compressed (needs an SBCL built with
;;;; :sb-core-compression, as Debian's is; the runtime then links libzstd.so.1, which Lambda has).
(require :sb-posix)
(load (merge-pathnames "bootstrap.lisp" *load-truename*))
(sb-ext:save-lisp-and-die "bootstrap"
                          :executable t
                          :toplevel (lambda () (lambda-bootstrap::main) (sb-ext:exit))
                          :compression (and (member "compressed" sb-ext:*posix-argv* :test #'string=) t))
