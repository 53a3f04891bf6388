;;;; A Lambda custom runtime in Common Lisp: SBCL's save-lisp-and-die turns this file into one
;;;; executable named `bootstrap` (the SBCL runtime with the Lisp core appended after its ELF image).
;;;; It speaks the Runtime API over HTTP/1.1 with sb-bsd-sockets (one connection per request).
(require :sb-bsd-sockets)

(defpackage :lambda-bootstrap (:use :cl :sb-bsd-sockets))
(in-package :lambda-bootstrap)

(defun api-endpoint ()
  "host and port of $AWS_LAMBDA_RUNTIME_API (host:port)."
  (let* ((api (sb-posix:getenv "AWS_LAMBDA_RUNTIME_API"))
         (colon (position #\: api)))
    (values (subseq api 0 colon) (parse-integer api :start (1+ colon)))))

(defun split-lines (text)
  (loop with start = 0
        for end = (search (format nil "~C~C" #\Return #\Newline) text :start2 start)
        collect (subseq text start end)
        while end do (setf start (+ end 2))))

(defun read-response (stream)
  (let ((bytes (make-array 0 :element-type '(unsigned-byte 8) :adjustable t :fill-pointer 0)))
    (loop for b = (read-byte stream nil) while b do (vector-push-extend b bytes))
    (let* ((text (sb-ext:octets-to-string bytes :external-format :utf-8))
           (split (search (format nil "~C~C~C~C" #\Return #\Newline #\Return #\Newline) text))
           (headers (loop for line in (rest (split-lines (subseq text 0 split)))
                          for colon = (position #\: line)
                          when colon collect (cons (string-downcase (subseq line 0 colon))
                                                   (string-trim " " (subseq line (1+ colon)))))))
      (values (subseq text (+ split 4)) headers))))

(defun http (method path &optional (body ""))
  "Send one request to the Runtime API; return (values body headers-alist)."
  (multiple-value-bind (host port) (api-endpoint)
    (let ((socket (make-instance 'inet-socket :type :stream :protocol :tcp))
          (octets (sb-ext:string-to-octets body :external-format :utf-8)))
      (socket-connect socket (host-ent-address (get-host-by-name host)) port)
      (let ((stream (socket-make-stream socket :input t :output t :element-type '(unsigned-byte 8)
                                               :buffering :full)))
        (unwind-protect
             (progn
               (write-sequence (sb-ext:string-to-octets
                                (format nil "~A /2018-06-01/runtime/~A HTTP/1.1~C~CHost: ~A~C~CContent-Length: ~D~C~CConnection: close~C~C~C~C"
                                        method path #\Return #\Newline host #\Return #\Newline (length octets)
                                        #\Return #\Newline #\Return #\Newline #\Return #\Newline)
                                :external-format :latin-1)
                               stream)
               (write-sequence octets stream)
               (finish-output stream)
               (read-response stream))
          (close stream))))))

(defun handle (event)
  "The function itself: a JSON answer built by hand (no JSON library in this example)."
  (format nil "{\"implementation\":\"~A ~A\",\"event_bytes\":~D,\"factorial_25\":~D}"
          (lisp-implementation-type) (lisp-implementation-version) (length event)
          (loop with f = 1 for i from 2 to 25 do (setf f (* f i)) finally (return f))))

(defun main ()
  (loop
    (multiple-value-bind (event headers) (http "GET" "invocation/next")
      (let ((id (cdr (assoc "lambda-runtime-aws-request-id" headers :test #'string=))))
        (handler-case (http "POST" (format nil "invocation/~A/response" id) (handle event))
          (error (e)
            (http "POST" (format nil "invocation/~A/error" id)
                  (format nil "{\"errorType\":\"LispError\",\"errorMessage\":~S}" (princ-to-string e)))))))))
