module gohttpcounter

go 1.22
